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
    assert duets["click_accuracy"] == np.mean([row["click_right"] for row in rows]) and duets["performers"] == 2
    assert "| duets | 2 |" in markdown_table(report)
    out = tmp_path / "report"
    assert main(["eval", str(small_model), str(tiny_world["test"]), "-o", str(out), "-q"]) == 0
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["summary"]["duet"]["median_ibm_sdr"] == duets["median_ibm_sdr"]
    assert media.read_png(out.with_suffix(".png")).shape[2] == 3
    assert main(["eval", str(small_model), str(tmp_path / "nothing-here"), "-o", str(out)]) == 1
    assert "neither a folder" in capsys.readouterr().err


def test_clicks_land_on_the_picture_at_the_stated_time(tiny_world):
    from pixelsep_plugin.evaluate.run import click_point

    sidecar = json.loads((tiny_world["test"] / "duet-test.json").read_text())
    performer = sidecar["performers"][0]
    point = click_point(performer, sidecar["fps"], 3.5)
    frame = 42  # 3.5 s at 12 fps
    assert point.time_seconds == frame / 12
    assert (point.x, point.y) == (performer["points"][frame][0] + 0.5, performer["points"][frame][1] + 0.5)
    legacy = {"boxes": performer["boxes"]}  # sidecars made before points: the box's centre
    x0, y0, x1, y1 = performer["boxes"][frame]
    assert (click_point(legacy, 12, 3.5).x, click_point(legacy, 12, 3.5).y) == ((x0 + x1) / 2, (y0 + y1) / 2)


def test_summaries_give_medians_and_quartiles():
    from pixelsep_plugin.evaluate.run import summarise

    rows = []
    for i, value in enumerate([1.0, 2.0, 3.0, 4.0, 5.0, float("nan")]):
        row = {"clip": f"c{i // 2}", "instrument": "drum" if i < 3 else "flute", "click_right": i % 2 == 0}
        for method in ("model", "ibm", "irm", "mixture"):
            for metric in ("sdr", "sir", "sar", "nsdr"):
                row[f"{method}_{metric}"] = value
        rows.append(row)
    s = summarise(rows)
    assert s["median_model_nsdr"] == 3.0 and s["quartiles_model_nsdr"] == [2.0, 4.0]  # NaN left out
    assert s["click_accuracy"] == 0.5 and s["per_instrument"]["drum"]["quartiles_model_nsdr"] == [1.5, 2.5]
