"""Evaluation: BSS Eval of clicked stems beside oracle masks, reports."""

from __future__ import annotations

import json

import numpy as np

from pixelsep_plugin import media
from pixelsep_plugin.evaluate.run import evaluate, markdown_table, oracle_stems, si_sdr


def test_oracle_masks_on_known_sources():
    rng = np.random.default_rng(0)
    t = np.arange(44100) / 44100
    a = np.stack([np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32) * 0.3
    b = (rng.normal(0, 0.05, size=(2, 44100))).astype(np.float32)
    refs = np.stack([a, b])
    stems = oracle_stems(a + b, refs, 44100)
    np.testing.assert_allclose(stems["irm"].sum(axis=0), a + b, atol=1e-4)  # ratio masks sum to one
    assert si_sdr(a[0], stems["ibm"][0, 0]) > 15 and si_sdr(a[0], stems["irm"][0, 0]) > 15
    assert si_sdr(a[0], (a + b)[0]) < si_sdr(a[0], stems["irm"][0, 0])


def test_eval_report_on_a_duet(tiny_world, small_model, tmp_path, capsys):
    from host_bridge.cli.main import main

    report = evaluate(small_model, [tiny_world["test"]], threads=2)
    rows = report["rows"]
    assert len(rows) == 2 and {r["instrument"] for r in rows} == {"flute", "drum"}
    for row in rows:
        assert np.isfinite(row["model_sdr"]) and np.isfinite(row["ibm_sdr"])
        assert row["ibm_sdr"] > row["mixture_sdr"] + 3  # the ceiling is well above the floor
        assert row["model_nsdr"] == row["model_sdr"] - row["mixture_sdr"]
    duets = report["summary"]["duet"]
    assert 0.0 <= duets["click_accuracy"] <= 1.0 and duets["performers"] == 2
    assert "| duets | 2 |" in markdown_table(report)
    out = tmp_path / "report"
    assert main(["eval", str(small_model), str(tiny_world["test"]), "-o", str(out), "-q"]) == 0
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["summary"]["duet"]["median_ibm_sdr"] == duets["median_ibm_sdr"]
    assert media.read_png(out.with_suffix(".png")).shape[2] == 3
    assert main(["eval", str(small_model), str(tmp_path / "nothing-here"), "-o", str(out)]) == 1
    assert "neither a folder" in capsys.readouterr().err
