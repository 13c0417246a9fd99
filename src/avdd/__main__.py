"""``python -m avdd`` (also what ``torchrun -m avdd extract ...`` runs on every rank)."""

import sys

from .cli import main

sys.exit(main())
