"""Anomaly detectors trained on real videos only (SPEC.md, "Anomaly detection", Table 4).

* :class:`NextTokenPredictor`: a causal Transformer predicts each frame from the previous
  ones; video score = max per-frame error (one stream or a concatenated pair).
* :class:`SyncDetector`: AVH-Align, an audio-visual synchronisation network; video score =
  logsumexp over time of -φ(v_t, a_t).
* :func:`ntp_pretext_report`, :func:`sync_pretext_report`: do they solve their pretext tasks,
  on reals, on fakes, and on the fake segments of fakes?
"""

from avdd.anomaly.ntp import NextTokenPredictor
from avdd.anomaly.pretext import fake_frame_mask, ntp_pretext_report, sync_pretext_report
from avdd.anomaly.sync import SyncDetector

__all__ = ["NextTokenPredictor", "SyncDetector", "fake_frame_mask", "ntp_pretext_report",
           "sync_pretext_report"]
