"""The command line, in-process: outputs, and one clear line for each kind of bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from host_bridge.cli.main import main
from pixelsep_plugin import media


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_separate_writes_stems_at_the_clips_rate_and_layout(small_model, clip_factory, tmp_path, capsys):
    clip = clip_factory("cli.mp4", sample_rate=48000, channel_layout="stereo")
    code, out, err = run(
        capsys,
        "separate",
        clip,
        "--at",
        "40,60",
        "--name",
        "left",
        "--box",
        "100,20,150,100@1",
        "-o",
        tmp_path / "o",
        "--model",
        small_model,
        "--cache-dir",
        tmp_path / "c",
        "-q",
    )
    assert code == 0, err
    assert "UNTRAINED" in err
    for name in ("left", "source1", "residual"):
        path = tmp_path / "o" / f"cli.{name}.wav"
        assert str(path) in out
        audio, rate = media.read_audio(path)
        assert rate == 48000 and audio.shape[0] == 2
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["cli.left.wav", "cli.residual.wav", "cli.source1.wav"]


def test_heatmap_and_info(small_model, clip_factory, tmp_path, capsys):
    clip = clip_factory("cli.mp4", sample_rate=48000, channel_layout="stereo")
    png = tmp_path / "heat.png"
    code, out, err = run(
        capsys, "heatmap", clip, "--at", "1.5", "-o", png, "--model", small_model, "--cache-dir", tmp_path / "c", "-q"
    )
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frame = media.read_png(png)
    assert frame.shape == (120, 160, 3)
    code, out, err = run(capsys, "info", "--model", small_model)
    assert code == 0 and "small-test" in out and "CPUExecutionProvider" in out and "UNTRAINED" in out


@pytest.fixture
def bad_inputs(clip_factory, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    return {
        "missing": (tmp_path / "nope.mp4", "does not exist"),
        "directory": (tmp_path, "directory"),
        "unreadable": (text, "not a media file"),
        "no-audio": (clip_factory("silent.mp4", with_audio=False), "no audio stream"),
        "no-video": (clip_factory("audio-only.mkv", with_video=False), "no video stream"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "unreadable", "no-audio", "no-video"])
@pytest.mark.parametrize("command", ["analyze", "separate", "heatmap"])
def test_bad_files_get_one_line(bad_inputs, tmp_path, capsys, case, command):
    path, message = bad_inputs[case]
    extra = {"analyze": [], "separate": ["--at", "1,1", "-o", tmp_path / "o"], "heatmap": ["-o", tmp_path / "h.png"]}
    # the model does not exist either: the input must be checked first
    code, out, err = run(capsys, command, path, *extra[command], "--model", tmp_path / "no-model")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pixelsep: error:") and message in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--at", "160,10"], "outside the 160x120 frame"),
        (["--at", "10,-3"], "outside the 160x120 frame"),
        (["--box", "0,0,200,10"], "outside the 160x120 frame"),
        (["--at", "10,10@7"], "outside the clip"),
        (["--at", "10;10"], "write it like"),
        (["--name", "x"], "must follow"),
        ([], "no source"),
    ],
)
def test_bad_queries_get_one_line_before_the_model_loads(clip_factory, tmp_path, capsys, args, message):
    clip = clip_factory("plain.mp4")
    code, out, err = run(capsys, "separate", clip, *args, "-o", tmp_path / "o", "--model", tmp_path / "no-model")
    assert code == 1
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists()


def test_heatmap_time_outside_the_clip(clip_factory, tmp_path, capsys):
    code, _, err = run(capsys, "heatmap", clip_factory("plain.mp4"), "--at", "30", "-o", tmp_path / "h.png")
    assert code == 1 and "outside the clip" in err


def test_a_model_failing_its_checksum_is_refused(small_model, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(small_model, broken)
    data = bytearray((broken / "audio.onnx").read_bytes())
    data[-10] ^= 0x01
    (broken / "audio.onnx").write_bytes(bytes(data))
    code, _, err = run(capsys, "info", "--model", broken)
    assert code == 1 and "audio.onnx" in err and err.count("\n") == 1
    manifest = json.loads((small_model / "manifest.json").read_text())
    assert manifest["files"]["audio.onnx"]["sha256"]


def test_the_source_clip_is_never_overwritten(small_model, clip_factory, tmp_path, capsys):
    folder = tmp_path / "work"
    folder.mkdir()
    clip = folder / "take.mp4"
    shutil.copy(clip_factory("plain.mp4"), clip)
    before = clip.read_bytes()
    # a source named like the clip's own extension would collide only through the prefix; write next to it
    code, out, err = run(
        capsys,
        "separate",
        clip,
        "--at",
        "10,10",
        "--name",
        "mp4",
        "-o",
        folder,
        "--model",
        small_model,
        "--cache-dir",
        tmp_path / "c",
        "-q",
    )
    assert code == 0, err
    assert clip.read_bytes() == before


def test_no_cache_keeps_nothing(small_model, clip_factory, tmp_path, capsys):
    import gc

    clip = clip_factory("plain.mp4")
    cache = tmp_path / "cache"
    code, out, err = run(
        capsys, "separate", clip, "--at", "10,10", "-o", tmp_path / "o", "--model", small_model,
        "--cache-dir", cache, "--no-cache", "-q",
    )
    assert code == 0, err
    gc.collect()
    assert list(cache.iterdir()) == []
    assert (tmp_path / "o" / "plain.source1.wav").is_file()
