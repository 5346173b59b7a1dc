"""The edit on the command line: separate --recipe, render, remix, and one line for each problem."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from host_bridge.cli.main import main
from pixelsep_plugin import media
from pixelsep_plugin import recipe as rcp


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def recipe_file(small_model, clip_factory, tmp_path, capsys):
    """A clip copied into tmp_path/project, separated with --recipe: (clip, recipe path, cache dir)."""
    project = tmp_path / "project"
    project.mkdir()
    clip = project / "duo.mp4"
    shutil.copy(clip_factory("edit.mp4", seconds=2.0), clip)
    cache = tmp_path / "cache"
    code, out, err = run(
        capsys, "separate", clip, "--at", "30,60@1", "--name", "red", "--box", "120,30,160,90", "--name", "blue",
        "-o", project / "stems", "--recipe", "duo.json", "--model", small_model, "--cache-dir", cache, "-q",
    )  # fmt: skip
    assert code == 0, err
    path = project / "stems" / "duo.json"
    assert f"recipe: {path}" in out
    return clip, path, cache


def test_separate_writes_a_recipe_beside_the_stems(recipe_file, small_model):
    clip, path, _ = recipe_file
    data = json.loads(path.read_text())
    assert data["clip"]["path"] == "../duo.mp4" and data["output"]["folder"] == "."
    recipe = rcp.load(path)
    assert [s.name for s in recipe.sources] == ["red", "blue"]
    assert recipe.sources[0].parts[0] == rcp.PartRef(30, 60, 1.0)
    assert recipe.sources[1].parts[0] == rcp.PartRef(120, 30, 0.0, 160, 90)
    assert recipe.clip.sample_rate == 44100 and recipe.clip.frame_rate == "30/1"


def test_render_a_recipe_and_its_gains(recipe_file, small_model, capsys):
    clip, path, cache = recipe_file
    stems = path.parent
    before = {p.name: p.read_bytes() for p in stems.glob("*.wav")}
    code, out, err = run(capsys, "render", path, "--gain", "red=+6", "--gain", "residual=-inf",
                         "--model", small_model, "--cache-dir", cache, "-q")  # fmt: skip
    assert code == 0, err
    assert "from cache" in out
    for name in ("red", "blue", "residual"):  # the same stems again
        assert (stems / f"duo.{name}.wav").read_bytes() == before[f"duo.{name}.wav"]
    remix = media.read_audio(stems / "duo.remix.wav")[0]
    red, blue = (media.read_audio(stems / f"duo.{n}.wav")[0] for n in ("red", "blue"))
    np.testing.assert_allclose(remix, 10 ** (6 / 20) * red + blue, atol=1e-5)
    assert rcp.load(path).source("red").gain_db == 0  # --gain changes the render, not the recipe


def test_render_a_moved_clip_needs_relink(recipe_file, small_model, tmp_path, capsys):
    clip, path, cache = recipe_file
    moved = tmp_path / "elsewhere.mp4"
    shutil.move(clip, moved)
    code, out, err = run(capsys, "render", path, "--model", small_model, "--cache-dir", cache, "-q")
    assert code == 1 and "is missing: if it has moved, pass --relink NEW_PATH" in err and err.count("\n") == 1
    code, out, err = run(capsys, "render", path, "--relink", moved, "--model", small_model, "--cache-dir", cache,
                         "-q", "--no-stems", "-o", tmp_path / "out")  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["duo.remix.wav"]
    other = tmp_path / "other.mp4"
    media.make_test_clip(other, seconds=2.0, width=160, height=120, fps=24)
    code, out, err = run(capsys, "render", path, "--relink", other, "--model", small_model, "-q")
    assert code == 1 and "not the clip this recipe was made on" in err


def test_render_refuses_bad_recipes_and_outputs_in_one_line(recipe_file, small_model, tmp_path, capsys):
    clip, path, cache = recipe_file
    data = json.loads(path.read_text())
    data["version"] = 3
    newer = path.with_name("newer.json")
    newer.write_text(json.dumps(data))
    code, _, err = run(capsys, "render", newer, "--model", small_model)
    assert code == 1 and "newer.json: recipe version 3 is newer than this pixelsep reads (1): update pixelsep" in err
    for args, message in [
        (["--video", tmp_path / "x.avi"], "--video must end in"),
        (["--multitrack", tmp_path / "x.mp4"], "--multitrack must end in .mkv, .mov"),
        (["--gain", "violin=3"], "no source named 'violin'"),
        (["--video", clip], "never changes"),
    ]:
        code, _, err = run(capsys, "render", path, *args, "--model", small_model, "--cache-dir", cache, "-q")
        assert code == 1 and message in err and err.count("\n") == 1, (args, err)
    code, _, err = run(capsys, "render", path, "--model", "no-such-model", "--cache-dir", cache, "-q")
    assert code == 1 and "make" not in err


def test_remix_in_one_command_to_an_audio_file_and_a_recipe(small_model, clip_factory, tmp_path, capsys):
    clip = clip_factory("remix.mp4", seconds=2.0)
    out = tmp_path / "mix" / "remix.flac"
    code, stdout, err = run(
        capsys, "remix", clip, "--at", "30,60@1", "--name", "red", "--gain", "red=+6", "--gain", "residual=-12",
        "-o", out, "--recipe", tmp_path / "mix" / "edit.json", "--model", small_model, "--cache-dir", tmp_path / "c", "-q",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == ["edit.json", "remix.flac"]  # nothing else left behind
    recipe = rcp.load(tmp_path / "mix" / "edit.json")
    assert recipe.source("red").gain_db == 6 and recipe.residual.gain_db == -12
    assert recipe.clip.path == clip.resolve()
    audio, rate = media.read_audio(out)
    assert rate == 44100 and audio.shape == media.read_audio(clip)[0].shape


def test_remix_errors_before_heavy_work(clip_factory, tmp_path, capsys):
    clip = clip_factory("remix.mp4", seconds=2.0)
    for args, message in [
        (["-o", tmp_path / "x.avi"], "-o must be a video"),
        (["-o", clip], "never changes"),
        (["-o", tmp_path / "x.mp4", "--gain", "loud"], "cannot read gain"),
        (["-o", tmp_path / "x.mp4", "--recipe", tmp_path / "x.txt"], "--recipe must be a .json file"),
        (["-o", tmp_path / "x.mp4", "--at", "9999,1"], "outside the"),
        (["--at", "30,60", "--name", "(lead)", "-o", tmp_path / "x.mp4"], "is not usable"),
        (["--at", "30,60", "--name", "Remix", "-o", tmp_path / "x.mp4"], "is reserved"),
    ]:
        args = args if "--at" in args else ["--at", "30,60", *args]
        code, _, err = run(capsys, "remix", clip, *args, "--model", "no-such-model")
        assert code == 1 and message in err, (args, err)


def test_the_cleanup_preset_from_the_command_line(small_model, clip_factory, tmp_path, capsys):
    pytest.importorskip("pyloudnorm")
    pytest.importorskip("noisereduce")
    clip = clip_factory("cli-cleanup.mp4", seconds=2.0)
    out = tmp_path / "clean.wav"
    code, stdout, err = run(capsys, "remix", clip, "--at", "30,60@1", "--name", "red", "--preset", "cleanup",
                            "-o", out, "--recipe", tmp_path / "clean.json", "--model", small_model,
                            "--cache-dir", tmp_path / "c", "-q")  # fmt: skip
    assert code == 0, err
    assert "warning: pixelsep.HumRemoval on residual: no mains hum found" in err  # said, in one line
    edit = rcp.load(tmp_path / "clean.json")
    assert [e.plugin for e in edit.source("red").effects] == [
        "pixelsep.HumRemoval", "pixelsep.NoiseReduction", "pixelsep.Loudness",
    ]  # fmt: skip
    assert edit.residual.gain_db == -12 and len(edit.residual.effects) == 2
    assert media.read_audio(out)[0].shape == media.read_audio(clip)[0].shape
