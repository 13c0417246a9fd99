"""Issue 14.10: command-line values a command cannot use are refused at parse time, in one
line naming the flag and what to give, never clamped or ended in a traceback."""

from __future__ import annotations

import pytest

from avdd.cli import main


@pytest.mark.parametrize("argv,message", [
    (["extract", "--dataset", "av1m", "--limit", "-1"], "--limit: -1 is below 1"),
    (["extract", "--dataset", "av1m", "--workers", "0"], "--workers: 0 is below 1"),
    (["extract", "--dataset", "av1m", "--workers", "-1"], "--workers: -1 is below 1"),
    (["extract", "--dataset", "av1m", "--batch-size", "0"], "--batch-size: 0 is below 1"),
    (["extract", "--dataset", "av1m", "--workers", "two"], "'two' is not a whole number"),
    (["extract", "--dataset", "av1m", "--device", "tpu9"], "choose cpu, cuda or cuda:N"),
    (["extract", "--dataset", "av1m", "--data-root", "av1m"], "expected DATASET=DIR"),
    (["extract", "--dataset", "av1m", "--data-root", "avm1=/d"], "'avm1' is not a dataset"),
    (["synth", "--out", "x", "--scale", "nan"], "--scale: 'nan': give a finite number > 0"),
    (["synth", "--out", "x", "--scale", "0"], "give a finite number > 0"),
    (["table2", "--synth-scale", "inf"], "--synth-scale: 'inf'"),
])
def test_unusable_flag_values_are_one_line_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


def test_cuda_on_a_build_without_it_says_so(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        main(["extract", "--dataset", "av1m", "--device", "cuda"])
    assert "sees no CUDA GPU" in capsys.readouterr().err


@pytest.mark.slow
def test_synth_on_another_benchmark_names_a_flag_that_exists(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["synth", "--out", str(out), "--scale", "0.01", "--workers", "1",
            "--seed", "0"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args[:-1], "1"]) == 2  # another seed, same folder
    err = capsys.readouterr().err
    assert "--overwrite" in err and "Traceback" not in err
    assert main([*args[:-1], "1", "--overwrite"]) == 0
