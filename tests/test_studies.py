"""The study steps behind Table 4 and Fig. 5, end to end on the tiny synthetic benchmark."""

import numpy as np

from avdd.analysis.anomaly import anomaly_table
from avdd.analysis.fusion import complementarity
from avdd.analysis.probes import probe_path, probe_scores, trained_probe
from avdd.features.prepare import feature_set, prepare

CHEAP = ["logmel", "mouth-pixels", "wav2vec2-tiny-random"]
SMALL_NTP = {"d_model": 16, "n_layers": 1, "n_heads": 2, "dim_feedforward": 32, "max_epochs": 3}
SMALL_SYNC = {"hidden": 16, "widths": (16,), "lr": 1e-3, "max_epochs": 3}


def test_probes_are_cached_and_scores_reproducible(tiny_profile):
    prepare(tiny_profile, ["logmel"], ["av1m", "favc"], progress=False)
    a = probe_scores(tiny_profile, "logmel", "av1m", "favc")
    path = probe_path(tiny_profile, "logmel", "av1m")
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    b = probe_scores(tiny_profile, "logmel", "av1m", "favc")
    assert path.stat().st_mtime_ns == stamp  # loaded, not retrained
    np.testing.assert_array_equal(a["score"], b["score"])
    retrained = trained_probe(tiny_profile, "logmel", "av1m", force=True)
    fs = feature_set(tiny_profile, "logmel", "favc", "test")
    np.testing.assert_allclose(retrained.decision_function(fs), a["score"], rtol=1e-6)


def test_complementarity_and_anomaly_tables(tiny_profile):
    prepare(tiny_profile, CHEAP, ["av1m", "favc"], progress=False)
    out = complementarity(tiny_profile, {"LM": "logmel", "MP": "mouth-pixels",
                                               "W": "wav2vec2-tiny-random"}, n_bootstrap=20)
    assert list(out["pearson"].index) == ["LM", "MP", "W"]
    assert np.allclose(np.diag(out["pearson"]), 100)
    fusion = out["fusion"]
    assert len(fusion) == 9 and (fusion.auc_fused_low <= fusion.auc_fused_high).all()
    again = complementarity(tiny_profile, {"LM": "logmel", "MP": "mouth-pixels",
                                                 "W": "wav2vec2-tiny-random"}, n_bootstrap=20)
    assert again["fusion"].equals(fusion)
    rows = {"LM": ("logmel",), "MP + LM": ("mouth-pixels", "logmel")}
    res = anomaly_table(tiny_profile, rows, ntp_params=SMALL_NTP, sync_params=SMALL_SYNC,
                        n_bootstrap=20)
    t = res["table"]
    got = set(zip(t.row, t.method))
    assert got == {("LM", "sup"), ("LM", "ntp"), ("MP + LM", "sup"), ("MP + LM", "ntp"),
                   ("MP + LM", "sync")}
    assert set(t.test) == {"av1m", "favc"} and t.auc.between(0, 100).all()
    assert set(res["pretext"].detector) == {"ntp", "sync"}
