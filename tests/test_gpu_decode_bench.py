"""bench/gpu_decode.py runs end to end at tiny shapes on the CPU, so the GPU run it exists for does
not first find a broken script; its refusals cost no model build."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import gpu_decode  # noqa: E402


def test_tiny_cpu_run_prints_one_table_with_both_caches(capsys):
    rows = gpu_decode.main(["--tiny", "--device", "cpu", "--prompt-lengths", "8", "--gen-length", "8"])
    out = capsys.readouterr().out
    assert "torch " in out and "float32" in out and "d_model 64, 2 layers" in out
    table = [line for line in out.splitlines() if line.startswith("| 8 |")]
    assert [line.split("|")[2].strip() for line in table] == ["none", "prefix"]
    for line in table:
        nfe, first_ms, forward_ms, tokens_s, wall_s = (float(c) for c in line.split("|")[3:8])
        assert nfe == 8 and min(first_ms, forward_ms, tokens_s, wall_s) > 0
    assert [r["cache"] for r in rows] == ["none", "prefix"] and all(r["peak_gib"] is None for r in rows)


def test_8b_shapes_on_a_cpu_are_refused_before_anything_is_built(capsys):
    with pytest.raises(SystemExit) as exit_:
        gpu_decode.main(["--device", "cpu"])
    assert exit_.value.code == 2 and "GPU" in capsys.readouterr().err


def test_a_device_without_room_is_refused_with_both_sizes(capsys, monkeypatch):
    from dllm_viz.models import loading

    monkeypatch.setattr(loading, "free_bytes", lambda device: 10**6)
    with pytest.raises(SystemExit) as exit_:
        gpu_decode.main(["--tiny", "--device", "cpu"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "GB free" in err and "random LLaDA-shaped" in err
