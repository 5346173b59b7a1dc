"""The Blender extension in real Blenders: the bpy modules 5.0.1, 4.5.15 and 4.3.0 (numpy 1.26), each in
its own environment (4.3 has `sequences` where 4.4+ have `strips`).

`make test` builds those environments (.venv-blender, .venv-blender-4.5, .venv-blender-4.3) and the extension zip; the scenario
(tests/blender/scenario.py) installs the zip like a user, clicks both performers of the example
duet in preview coordinates of a moved, scaled and rotated strip, saves, reopens and removes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host_bridge.cli.main import main
from pixelsep_plugin import media, recipe

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "duet.mp4"
# Blender analyses with numpy's FFT (float64), the CLI with scipy's (float32); the component maps are
# kept as 8-bit codes, so a rounding difference can move a code by one step: stems agree to 1e-4.
CROSS_FFT_ATOL = 1e-4


# Blender version -> the environment `make blender-env` makes for it (bpy module, numpy < 2)
BLENDERS = {"5.0": REPO / ".venv-blender", "4.5": REPO / ".venv-blender-4.5", "4.3": REPO / ".venv-blender-4.3"}


def _blender_python(version: str) -> Path:
    path = BLENDERS[version] / "bin" / "python"
    if not path.is_file():
        pytest.fail(f"no Blender {version} Python at {path}: run `make blender-env`")
    return path


@pytest.fixture(scope="module", params=sorted(BLENDERS, reverse=True))
def scenario(request, tmp_path_factory):
    version = request.param
    work = tmp_path_factory.mktemp(f"blender-{version}")
    build = subprocess.run([sys.executable, str(REPO / "installers" / "build_blender_extension.py"), "--out", str(work / "dist")],
                           capture_output=True, text=True, timeout=900)  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    archive = next((work / "dist").glob("pixelsep_vse-*-linux-x64.zip"))
    env = {**os.environ, "HOME": str(work / "home"), "PIXELSEP_CACHE": str(work / "cache")}
    (work / "home").mkdir()
    out = work / "report.json"
    # a recipe made on the command line, for the scenario to open (the long drum at -6 dB)
    cli = ["separate", str(EXAMPLE), "--at", "136,88@5", "--name", "long-drum", "-o", str(work / "cli"),
           "--recipe", "duet.json", "--model", str(REPO / "models" / "pixelsep-small"), "--cache-dir", str(work / "cli-cache"), "-q"]  # fmt: skip
    assert main(cli) == 0
    made = recipe.load(work / "cli" / "duet.json")
    made.sources[0].gain_db = -6.0
    made.sources[0].effects.append(recipe.Effect("Gain", {"gain_db": -6.0}))  # a pedalboard chain, played in Blender
    recipe.save(made, work / "cli" / "duet.json")
    run = subprocess.run(
        [str(_blender_python(version)), str(REPO / "tests" / "blender" / "scenario.py"), "--", str(archive), str(EXAMPLE), str(out), str(work)],
        capture_output=True, text=True, timeout=600, env=env, cwd=work,
    )  # fmt: skip
    assert run.returncode == 0 and out.is_file(), (run.stdout + run.stderr)[-4000:]
    report = json.loads(out.read_text())
    assert report["blender"].startswith(version)
    return report, work


def test_the_zip_installs_and_enables(scenario):
    report, _ = scenario
    assert len(report["enabled"]) == 1
    assert report["analyze"] == ["FINISHED"] and report["add_source"] == [["FINISHED"], ["FINISHED"]]
    assert report["heatmap_toggle"] is True
    job = report["background_job"]  # Analyze's background thread: progress, then the analysis
    assert job["result"] and job["error"] is None and job["fraction"] == 1.0 and len(job["progress_seen"]) > 1
    assert not report["cancelled_job"]["result"] and "cancel" in report["cancelled_job"]["error"].lower()


def test_each_click_becomes_a_sound_strip_under_the_movie(scenario):
    report, _ = scenario
    before, after = report["before"], report["separated"]
    movie = after["duet"]
    stems = {name: s for name, s in after.items() if name not in before}
    assert sorted(stems) == ["duet.accordion", "duet.long-drum", "duet.residual"]
    busy = {s["channel"] for s in before.values()}
    for stem in stems.values():
        assert stem["type"] == "SOUND" and (stem["start"], stem["end"]) == (movie["start"], movie["end"])
        assert stem["channel"] not in busy and not stem["mute"]  # the title on channel 4 overlaps: skipped
    assert len({s["channel"] for s in stems.values()}) == 3
    assert after["duet.sound"]["mute"] and not before["duet.sound"]["mute"]  # muted, still there
    # the clicks, mapped back through offset, scale and rotation, land on the box centres
    for source in report["recipe"]["sources"]:
        click = source["parts"][0]
        assert click["point"] == pytest.approx(report["clicks"][source["name"]], abs=1e-3)
        assert click["time_seconds"] == pytest.approx(5.0)


def test_a_new_click_keeps_the_stems_volume_keyframes(scenario):
    report, _ = scenario
    assert report["keyframes"] == pytest.approx([0.25, 0.75])


def test_stems_equal_what_the_cli_writes(scenario, tmp_path):
    report, work = scenario
    args = ["separate", str(EXAMPLE), "-o", str(tmp_path), "-q", "--model", str(REPO / "models" / "pixelsep-small")]
    for source in report["recipe"]["sources"]:
        click = source["parts"][0]
        x, y = click["point"]
        args += ["--at", f"{x!r},{y!r}@{click['time_seconds']!r}", "--name", source["name"]]
    assert main(args) == 0
    for name in ("long-drum", "accordion", "residual"):
        blender_file = Path(report["reopened"][f"duet.{name}"]["file"]).name
        assert blender_file == f"duet.r2.{name}.wav"  # the second render (after the second click)
        blender_stem, rate = media.read_audio(work / "stems-after-reopen" / blender_file)
        cli_stem, cli_rate = media.read_audio(tmp_path / f"duet.{name}.wav")
        assert rate == cli_rate == 44100 and blender_stem.shape == cli_stem.shape
        np.testing.assert_allclose(blender_stem, cli_stem, atol=CROSS_FFT_ATOL)


def test_what_blender_plays_with_a_stem_soloed_is_that_stem(scenario):
    """Solo from the panel, then Blender's own audio mixdown of the scene: the accordion stem alone,
    sample for sample, starting at the movie strip's first frame."""
    report, work = scenario
    assert report["solo"] == ["FINISHED"] and report["mixdown"] == ["FINISHED"]
    soloed = report["soloed"]
    assert not soloed["duet.accordion"]["mute"]
    assert all(soloed[n]["mute"] for n in ("duet.long-drum", "duet.residual", "duet.sound"))
    heard, rate = media.read_audio(report["mixdown_file"])
    stem, stem_rate = media.read_audio(work / "stems-after-reopen" / Path(report["reopened"]["duet.accordion"]["file"]).name)
    assert rate == stem_rate == 44100 and heard.shape[0] == stem.shape[0] == 2
    start = round((report["separated"]["duet"]["start"] - 1) / report["fps"] * rate)
    assert not np.any(heard[:, : start - 1])  # silence before the movie strip
    n = stem.shape[1] - 8
    lags = {lag: float(np.abs(heard[:, start + lag : start + lag + n] - stem[:, :n]).max()) for lag in range(-3, 4)}
    best = min(lags, key=lags.get)
    assert abs(best) <= 1 and lags[best] < 1e-6, lags  # Blender rounds the strip's start to a sample


def test_save_reopen_keeps_relative_stems_and_remove_restores_the_scene(scenario):
    report, work = scenario
    for name in ("duet.long-drum", "duet.accordion", "duet.residual"):
        saved = report["saved"][name]
        assert saved["stored"].startswith("//pixelsep/")  # moved from the temporary folder on save
        assert Path(saved["file"]).is_relative_to(work / "project" / "pixelsep")
        assert report["reopened"][name]["stored"] == saved["stored"]
    assert report["remove"] == ["FINISHED"] and not report["recipe_after_remove"]
    removed, before = report["removed"], report["before"]
    assert sorted(removed) == sorted(before)
    for name, strip in before.items():
        assert {k: removed[name][k] for k in ("channel", "start", "end", "mute")} == {
            k: strip[k] for k in ("channel", "start", "end", "mute")
        }
    # the files stay, so that Undo can bring the strips back with their sound
    assert all(Path(report["saved"][n]["file"]).is_file() for n in ("duet.long-drum", "duet.accordion", "duet.residual"))


def test_a_scene_at_another_frame_rate_gets_stems_that_play_like_the_movies_sound(scenario):
    """24 fps movie, 30 fps scene: the click's time is the shown picture's; the stems span what the
    movie's own (trimmed) sound strip spans, not the picture's shorter run of frames."""
    report, _ = scenario
    assert report["fps30_add"] == ["FINISHED"]
    fps30 = report["fps30"]
    click = fps30["recipe"]["sources"][0]["parts"][0]
    assert click["time_seconds"] == pytest.approx(5.0)
    strips = fps30["strips"]
    movie, sound = strips["duet30"], strips["duet30.sound"]
    assert (movie["start"], movie["end"]) == (325, 541) and (sound["start"], sound["end"]) == (331, 601)
    assert sound["mute"]
    for name in ("duet30.long-drum", "duet30.residual"):
        assert strips[name]["type"] == "SOUND" and (strips[name]["start"], strips[name]["end"]) == (331, 601)
        assert strips[name]["channel"] > 11 and not strips[name]["mute"]


def test_a_click_plays_the_span_at_the_playhead_at_once_then_the_whole_stems(scenario):
    """The click renders 2 s before to 8 s after the playhead into stand-ins as long as the stems (the
    strips get their final place at once), then the whole stems in the background, swapped in."""
    from host_bridge.blender.plan import first_span

    report, _ = scenario
    span, final = report["fps30_span"], report["fps30"]
    assert span["pending"] == 1 and report["fps30_finished"] == ["stems of duet30 r1 in place"]
    t = final["recipe"]["sources"][0]["parts"][0]["time_seconds"]
    for name in ("duet30.long-drum", "duet30.residual"):
        before, after = span["strips"][name], final["strips"][name]
        assert before["file"].endswith(".span.wav") and Path(after["file"]).name == Path(before["file"]).name.replace(
            ".span.wav", ".wav"
        )
        assert {k: before[k] for k in ("channel", "start", "end", "mute", "volume")} == {
            k: after[k] for k in ("channel", "start", "end", "mute", "volume")
        }
        stand_in, rate = media.read_audio(before["file"])
        whole, whole_rate = media.read_audio(after["file"])
        assert rate == whole_rate and stand_in.shape == whole.shape  # as long as the stem
        start, end = first_span(t, whole.shape[-1] / rate)
        a, b = round(start * rate), round(end * rate)
        assert b - a == 10 * rate  # 10 s around the playhead at 5 s
        np.testing.assert_allclose(stand_in[:, a:b], np.clip(whole[:, a:b], -1, 1), atol=1e-4)  # 16-bit
        assert np.abs(stand_in[:, a:b]).max() > 1e-3
        assert not stand_in[:, :a].any() and not stand_in[:, b:].any()


def test_renamed_stem_strips_stay_the_stems(scenario):
    report, _ = scenario
    assert report["renamed_add"] == ["FINISHED"] and report["renamed_remove"] == ["FINISHED"]
    strips, recipe, host = report["renamed"]["strips"], report["renamed"]["recipe"], report["renamed"]["host"]
    assert [host["strips"][s["name"]] for s in recipe["sources"]] == ["my drum", "duet30.accordion"]
    assert host["residual_strip"] == "the rest"
    assert "duet30.long-drum" not in strips and "duet30.residual" not in strips
    for name in ("my drum", "the rest", "duet30.accordion"):
        assert ".r2." in Path(strips[name]["stored"]).name  # the second render's files
    removed = report["renamed_removed"]
    assert not {"my drum", "the rest", "duet30.accordion"} & set(removed)
    assert not removed["my sound"]["mute"] and report["renamed_sound_tags"] == []  # unmuted, untagged


PLACEMENTS = [
    {"offset": [37, -21], "scale": [1, 1], "rotation": 0.0, "origin": [0.5, 0.5], "flip": [False, False]},
    {"offset": [0, 0], "scale": [1.5, 0.7], "rotation": 0.0, "origin": [0.5, 0.5], "flip": [False, False]},
    {"offset": [0, 0], "scale": [1.3, 1.3], "rotation": 0.5, "origin": [0.2, 0.9], "flip": [False, False]},
    {"offset": [30, 10], "scale": [1, 1], "rotation": 0.0, "origin": [0.5, 0.5], "flip": [True, False]},
    {"offset": [-40, 25], "scale": [0.8, 1.2], "rotation": 1.1, "origin": [0.7, 0.3], "flip": [True, True]},
]


@pytest.mark.parametrize("version", sorted(BLENDERS, reverse=True))
def test_the_placement_model_matches_blenders_own_render(version, tmp_path):
    """A white 8x8 marker in a 200x100 clip, rendered by Blender under each placement, lands where
    coords.movie_to_view says (render pixels = view + half the frame, y flipped)."""
    from host_bridge.blender.coords import StripPlacement, movie_to_view, view_to_movie

    frame = np.zeros((100, 200, 3), np.uint8)
    frame[20:28, 140:148] = 255
    clip = media.write_clip(tmp_path / "marker.mp4", [frame] * 24, 24, 200, 100, np.zeros((2, 44100), np.float32), crf=0)
    (tmp_path / "cases.json").write_text(json.dumps(PLACEMENTS))
    run = subprocess.run(
        [str(_blender_python(version)), str(REPO / "tests" / "blender" / "placement.py"), "--", str(clip),
         str(tmp_path / "cases.json"), str(tmp_path / "out.json"), str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["blender"].startswith(version)
    for case, seen in zip(PLACEMENTS, report["results"], strict=True):
        placement = StripPlacement(200, 100, offset_x=case["offset"][0], offset_y=case["offset"][1],
                                   scale_x=case["scale"][0], scale_y=case["scale"][1], rotation=case["rotation"],
                                   origin_x=case["origin"][0], origin_y=case["origin"][1],
                                   flip_x=case["flip"][0], flip_y=case["flip"][1])  # fmt: skip
        assert seen["size"] == [400, 300] and seen["pixels"] > 20
        view_x, view_y = movie_to_view(placement, 144, 24)  # the marker's centre
        assert (view_x + 200, 150 - view_y) == pytest.approx((seen["x"], seen["y"]), abs=0.5), case
        assert view_to_movie(placement, seen["x"] - 200, 150 - seen["y"]) == pytest.approx((144, 24), abs=0.5)


def test_a_recipe_saved_in_blender_renders_on_the_command_line(scenario, tmp_path):
    report, work = scenario
    assert report["save_recipe"] == ["FINISHED"] and report["render_remix"] == ["FINISHED"]
    saved = recipe.load(work / "from-blender" / "duet.json")
    assert saved.clip.path == EXAMPLE.resolve() and [s.name for s in saved.sources] == ["long-drum", "accordion"]
    played = report["separated"]  # the strips' volumes (the keyframed one at the current frame) are the gains
    for source in saved.sources:
        assert 10 ** (source.gain_db / 20) == pytest.approx(played[f"duet.{source.name}"]["volume"], rel=1e-4)
    assert main(["render", str(work / "from-blender" / "duet.json"), "-o", str(tmp_path), "-q",
                 "--model", str(REPO / "models" / "pixelsep-small")]) == 0  # fmt: skip
    for name in ("long-drum", "accordion", "residual"):
        blender_stem = media.read_audio(work / "stems-after-reopen" / f"duet.r2.{name}.wav")[0]
        np.testing.assert_allclose(media.read_audio(tmp_path / f"duet.{name}.wav")[0], blender_stem, atol=CROSS_FFT_ATOL)
    np.testing.assert_allclose(
        media.read_audio(tmp_path / "duet.remix.wav")[0], media.read_audio(work / "from-blender" / "remix.wav")[0], atol=CROSS_FFT_ATOL
    )
    assert report["export_timeline"] == [["FINISHED"], ["FINISHED"]]  # MLT, and FCP 7 XML through OpenTimelineIO
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(work / "from-blender" / "duet.xml"))
    files = sorted(Path(c.media_reference.target_url).name for t in timeline.tracks for c in t.find_clips())
    assert files == ["duet.accordion.wav", "duet.long-drum.wav", "duet.mp4", "duet.mp4", "duet.residual.wav"]


def test_a_recipe_from_the_command_line_opens_in_blender(scenario):
    report, work = scenario
    assert report["open_recipe"] == ["FINISHED"]
    opened = report["opened"]
    assert [s["name"] for s in opened["recipe"]["sources"]] == ["long-drum"]
    strip = opened["strips"]["duetB.long-drum"]
    assert strip["volume"] == pytest.approx(10 ** (-6 / 20), rel=1e-4) and not strip["mute"]
    assert [e["plugin"] for e in opened["recipe"]["sources"][0]["effects"]] == ["Gain"]
    assert strip["file"].endswith(".long-drum.fx.wav")  # the stem through its chain plays
    cli_stem = media.read_audio(work / "cli" / "duet.long-drum.wav")[0]
    np.testing.assert_allclose(media.read_audio(strip["file"])[0], 10 ** (-6 / 20) * cli_stem, atol=CROSS_FFT_ATOL)


def test_re_render_keeps_the_strip_and_plays_the_new_render(scenario):
    report, _ = scenario
    assert report["rerender"] == ["FINISHED"]
    before, after = report["opened"]["strips"]["duetB.long-drum"], report["rerendered"]["duetB.long-drum"]
    assert (after["channel"], after["start"], after["end"]) == (before["channel"], before["start"], before["end"])
    assert after["volume"] == pytest.approx(0.3) and after["file"] != before["file"]
    assert after["file"].endswith(".r2.long-drum.fx.wav")
    np.testing.assert_array_equal(media.read_audio(after["file"])[0], media.read_audio(before["file"])[0])
