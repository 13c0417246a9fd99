"""``python -m avdd`` (also what ``torchrun -m avdd extract ...`` runs on every rank)."""

import sys

from avdd.cli import main

sys.exit(main())
