"""Deliveries of a recipe through the engine and the command line: the clip with its new sound (picture
copied, not re-encoded) and the multitrack file for editors, in sync also when the sound starts late."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from test_mux import _audio_start_seconds, _best_lag, _decode, _packets, _write_fixture

from host_bridge.cli.main import main
from pixelsep_plugin import media
from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.api import render_recipe, write_multitrack_video, write_remix_video
from pixelsep_plugin.runtime.query import Point, Source


def _noise(seconds: float, rate: int = 44100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((2, int(seconds * rate)))).astype(np.float32)


@pytest.fixture(scope="module")
def late_clip(tmp_path_factory):
    """An MP4 whose sound (FLAC) starts 0.75 s after its picture."""
    path = tmp_path_factory.mktemp("late") / "late.mp4"
    _write_fixture(path, _noise(2.0), audio_codec="flac", audio_offset_seconds=0.75, seconds=3.0)
    assert media.probe(path).audio_offset_seconds == pytest.approx(0.75, abs=1e-6)
    return path


def _edit(separator, clip, gains=()):
    analysis, _ = separator.analyze(clip)
    # the click's time is on the picture's clock: the late clip's sound starts at 0.75 s
    recipe = rcp.new_recipe(rcp.clip_ref(clip), separator.package.model_id, separator.package.checksum,
                            [Source("left", (Point(30, 60, 1.0),))])  # fmt: skip
    return analysis, rcp.apply_gains(recipe, list(gains))


def test_the_remix_video_copies_the_picture_and_starts_its_sound_where_the_clip_did(separator, late_clip, tmp_path):
    analysis, recipe = _edit(separator, late_clip, [("left", 6.0), ("residual", -12.0)])
    out = write_remix_video(separator, analysis, recipe, tmp_path / "remix.mp4")
    assert _packets(out, "video") == _packets(late_clip, "video")  # byte for byte, same times
    assert _audio_start_seconds(out) == pytest.approx(float(_audio_start_seconds(late_clip)), abs=0.5 / 44100)
    expected = media.read_audio(render_recipe(separator, analysis, recipe, tmp_path / "wav", stems=False).remix)[0]
    decoded, start = _decode(out)
    assert start == pytest.approx(0.75, abs=0.5 / 44100)
    assert _best_lag(decoded, expected) == 0
    assert np.corrcoef(decoded[0, 2048:80000], expected[0, 2048:80000])[0, 1] > 0.5  # white noise through AAC


def test_the_multitrack_file_holds_every_track_in_sync(separator, late_clip, tmp_path):
    analysis, recipe = _edit(separator, late_clip, [("left", -6.0)])
    out = write_multitrack_video(separator, analysis, recipe, tmp_path / "tracks.mov")
    rendered = render_recipe(separator, analysis, recipe, tmp_path / "wav")
    expected = {
        "remix": rendered.remix, "left": rendered.stems["left"], "residual": rendered.residual,
    }  # fmt: skip
    with av.open(str(out)) as container:
        titles = [s.metadata.get("title") or s.metadata.get("handler_name") for s in container.streams.audio]
    assert titles == ["original", "remix", "left", "residual"]
    assert _packets(out, "video") == _packets(late_clip, "video")
    original, _ = _decode(late_clip)
    for number, title in enumerate(titles):
        assert _audio_start_seconds(out, number) == Fraction(3, 4)
        decoded, _ = _decode(out, number)
        want = original if title == "original" else media.read_audio(expected[title])[0]
        assert decoded.shape == want.shape
        np.testing.assert_allclose(decoded, want, atol=2**-22)


def test_remix_in_one_command_to_a_video(small_model, clip_factory, tmp_path, capsys):
    clip = clip_factory("remix-video.mp4", seconds=2.0)
    out = tmp_path / "remixed.mp4"
    code = main([str(a) for a in (
        "remix", clip, "--at", "30,60@1", "--name", "red", "--gain", "red=+6", "--gain", "residual=-12", "-o", out,
        "--model", small_model, "--cache-dir", tmp_path / "c", "-q",
    )])  # fmt: skip
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert f"remix: {out}" in stdout
    assert _packets(out, "video") == _packets(clip, "video")
    info, original = media.probe(out), media.probe(clip)
    assert (info.sample_rate, info.channel_layout, info.rotation_degrees) == (44100, "stereo", 0)
    assert info.duration_seconds == pytest.approx(original.duration_seconds, abs=0.05)


def test_render_writes_the_video_and_the_multitrack_file(small_model, clip_factory, tmp_path, capsys):
    clip = clip_factory("render-video.mp4", seconds=2.0)
    assert main([str(a) for a in ("separate", clip, "--at", "30,60", "--name", "red", "-o", tmp_path / "edit",
                                  "--recipe", "edit.json", "--model", small_model, "--cache-dir", tmp_path / "c", "-q")]) == 0  # fmt: skip
    code = main([str(a) for a in ("render", tmp_path / "edit" / "edit.json", "--no-stems", "--video", tmp_path / "v.mkv",
                                  "--multitrack", tmp_path / "t.mkv", "--model", small_model, "--cache-dir", tmp_path / "c", "-q")])  # fmt: skip
    stdout, err = capsys.readouterr()
    assert code == 0, err
    with av.open(str(tmp_path / "v.mkv")) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["flac"]
    with av.open(str(tmp_path / "t.mkv")) as container:
        assert [s.metadata.get("title") for s in container.streams.audio] == ["original", "remix", "red", "residual"]
    remix = media.read_audio(tmp_path / "edit" / "render-video.remix.wav")[0]
    np.testing.assert_allclose(_decode(tmp_path / "v.mkv")[0], remix, atol=2**-22)


@pytest.mark.parametrize("suffix", [".mlt", ".kdenlive", ".xges"])
def test_a_recipes_timeline_rendered_by_an_editing_engine_is_the_remix(small_model, clip_factory, tmp_path, capsys, suffix):
    """`pixelsep timeline`, rendered by melt (MLT: Kdenlive, Shotcut) or GStreamer Editing Services,
    sounds like `pixelsep render`'s remix of the same recipe, aligned to the sample."""
    from test_timeline import lag_and_snr

    engine = "ges-launch-1.0" if suffix == ".xges" else "melt"
    if shutil.which(engine) is None:
        pytest.skip(f"{engine} is not installed (the Makefile installs it)")
    if suffix == ".xges":
        pytest.importorskip("otio_xges_adapter")
    clip = clip_factory("timeline.mp4", seconds=2.0, fps=25)
    common = ["--model", small_model, "--cache-dir", tmp_path / "c", "-q"]
    assert main([str(a) for a in ("separate", clip, "--at", "30,60", "--name", "red", "--box", "120,30,160,90",
                                  "--name", "blue", "-o", tmp_path / "edit", "--recipe", "edit.json", *common)]) == 0  # fmt: skip
    edit = rcp.load(tmp_path / "edit" / "edit.json")
    edit.source("red").gain_db, edit.source("blue").mute, edit.residual.gain_db = 6.0, True, -12.0
    rcp.save(edit, tmp_path / "edit" / "edit.json")
    timeline = tmp_path / f"edit{suffix}"
    assert main([str(a) for a in ("timeline", tmp_path / "edit" / "edit.json", "-o", timeline, *common)]) == 0
    assert main([str(a) for a in ("render", tmp_path / "edit" / "edit.json", "--no-stems", *common)]) == 0
    capsys.readouterr()
    remix = media.read_audio(tmp_path / "edit" / "timeline.remix.wav")[0]
    out = tmp_path / "engine.wav"
    if engine == "melt":
        command = ["melt", str(timeline), "-consumer", f"avformat:{out}", "acodec=pcm_f32le", "ar=44100", "ac=2",
                   "vn=1", "real_time=0"]  # fmt: skip
    else:
        command = ["ges-launch-1.0", "--load", str(timeline), "--track-types", "audio", "--outputuri", out.as_uri(),
                   "--format", "audio/x-wav:audio/x-raw,format=F32LE"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and out.is_file(), (result.stdout + result.stderr)[-2000:]
    rendered, rate = media.read_audio(out)
    assert rate == 44100
    n = min(rendered.shape[1], remix.shape[1])
    assert n >= 2 * 44100 - 44100 // 25  # the whole clip, to the last whole frame
    lag, snr, max_error = lag_and_snr(rendered[:, :n], remix[:, :n])
    assert lag == 0 and snr > 100.0, f"lag {lag}, SNR {snr:.1f} dB, largest error {max_error:.2e}"


@pytest.mark.parametrize("suffix", [".otio", ".xml", ".fcpxml"])
def test_a_recipes_timeline_reads_back_with_its_tracks(small_model, clip_factory, tmp_path, capsys, suffix):
    otio = pytest.importorskip("opentimelineio")
    clip = clip_factory("timeline.mp4", seconds=2.0, fps=25)
    common = ["--model", small_model, "--cache-dir", tmp_path / "c", "-q"]
    assert main([str(a) for a in ("separate", clip, "--at", "30,60", "--name", "red", "-o", tmp_path / "edit",
                                  "--recipe", "edit.json", *common)]) == 0  # fmt: skip
    timeline = tmp_path / f"edit{suffix}"
    assert main([str(a) for a in ("timeline", tmp_path / "edit" / "edit.json", "-o", timeline, *common)]) == 0
    assert f"timeline: {timeline}" in capsys.readouterr().out
    read = otio.adapters.read_from_file(str(timeline))
    if not isinstance(read, otio.schema.Timeline):  # Final Cut Pro X XML reads as a collection of projects
        read = next(iter(read))
    clips = [c for track in read.tracks for c in track.find_clips()]
    media_files = sorted(Path(c.media_reference.target_url).name for c in clips)
    assert media_files == ["timeline.mp4", "timeline.mp4", "timeline.red.wav", "timeline.residual.wav"]
    assert read.duration().rescaled_to(25).value == pytest.approx(50, abs=1)
