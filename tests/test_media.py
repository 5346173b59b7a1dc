"""The media layer: probing, streamed decoding, sampled frames, rotation, atomic writing, errors."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from pixelsep_plugin import media
from pixelsep_plugin.errors import InputError, MediaError
from pixelsep_plugin.media import decode

LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "5.1": 6}
FLAC_STEP = 2.0**-23


def _signal(num_channels: int, sample_rate: int, seconds: float = 1.0) -> np.ndarray:
    """float32 (channels, n): a different tone per channel (60 Hz in channel 3, the LFE of 5.1), faded in."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    freqs = [300.0 + 150.0 * c if c != 3 else 60.0 for c in range(num_channels)]
    return np.stack([0.3 * np.sin(2 * np.pi * f * t) * np.minimum(1.0, t * 5) for f in freqs]).astype(
        np.float32
    )


def _snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / max(np.sum((reference - test) ** 2), 1e-20)))


def _centre(rgb: np.ndarray, colour: str) -> tuple[float, float]:
    """(x, y) of the red or blue rectangle's centre, as fractions of the width and height."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    mask = (r > 150) & (g < 100) & (b < 100) if colour == "red" else (b > 150) & (r < 100) & (g < 120)
    ys, xs = np.nonzero(mask)
    assert xs.size > 20, f"no {colour} rectangle found"
    return float(xs.mean() / rgb.shape[1]), float(ys.mean() / rgb.shape[0])


# ---------------------------------------------------------------------------------------------------
# probe


def test_probe_fields(clip_factory):
    clip = clip_factory("a.mp4")
    info = media.probe(clip)
    assert info.path == clip
    assert info.has_video and info.has_audio
    assert (info.width, info.height, info.rotation_degrees) == (160, 120, 0)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.05)
    assert info.frame_rate == pytest.approx(30.0)
    assert info.num_video_frames == 60
    assert (info.sample_rate, info.num_channels, info.channel_layout) == (44100, 2, "stereo")
    assert abs(info.num_audio_samples - 88200) <= 2048  # an estimate: AAC pads its last frame


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("c.mp4", {}),
        ("c.mov", {"sample_rate": 48000}),
        ("c.mkv", {"sample_rate": 22050, "channel_layout": "5.1"}),
        ("c.webm", {"sample_rate": 48000, "channel_layout": "mono"}),
    ],
)
def test_every_container_decodes(clip_factory, name, kwargs):
    clip = clip_factory(name, **kwargs)
    info = media.probe(clip)
    assert info.has_video and info.has_audio and (info.width, info.height) == (160, 120)
    assert info.sample_rate == kwargs.get("sample_rate", 44100)
    assert info.channel_layout == kwargs.get("channel_layout", "stereo")
    audio, rate = media.read_audio(clip)
    assert rate == info.sample_rate and audio.dtype == np.float32 and audio.shape[0] == info.num_channels
    assert abs(audio.shape[1] - 2 * rate) <= 2048
    spectrum = np.abs(np.fft.rfft(audio[-1, rate // 2 : rate // 2 + rate]))  # 1 s: bins are Hz
    assert set(np.argsort(spectrum)[-2:].tolist()) == {440, 660}
    frames = list(media.iter_sampled_frames(clip, 1.0, 64))
    assert [t for t, _ in frames] == [float(i) for i in range(3) if i < info.duration_seconds]
    assert all(rgb.shape == (64, 80, 3) for _, rgb in frames)  # 160x120 -> 85.3x64 -> 80x64
    assert _centre(frames[1][1], "red")[0] < 1 / 3 < 2 / 3 < _centre(frames[1][1], "blue")[0]


# ---------------------------------------------------------------------------------------------------
# audio


@pytest.mark.parametrize("layout", ["mono", "stereo", "5.1"])
def test_native_audio_is_what_was_written(tmp_path, layout):
    n = LAYOUT_CHANNELS[layout]
    written = _signal(n, 44100)
    # lossless (FLAC, 24 bits) in Matroska: equal within one step
    clip = media.make_test_clip(
        tmp_path / "x.mkv", 1.0, 32, 32, channel_layout=layout, audio=written, audio_codec="flac"
    )
    info = media.probe(clip)
    assert (info.channel_layout, info.num_channels) == (layout, n)
    audio, rate = media.read_audio(clip)
    assert rate == 44100 and audio.shape == written.shape
    assert np.abs(audio - written).max() <= FLAC_STEP
    # lossy (AAC) in MP4: in time (no offset) and close, channel by channel
    clip = media.make_test_clip(tmp_path / "x.mp4", 1.0, 32, 32, channel_layout=layout, audio=written)
    audio, _ = media.read_audio(clip)
    assert written.shape[1] <= audio.shape[1] <= written.shape[1] + 2048
    middle = slice(2000, 42000)
    for c in range(n):
        assert _snr_db(written[c, middle], audio[c, middle]) > 30, c


def test_audio_blocks_are_full_and_join_up(tmp_path):
    written = _signal(6, 48000)
    clip = media.make_test_clip(
        tmp_path / "b.mkv", 1.0, 32, 32, 30, 48000, "5.1", audio=written, audio_codec="flac"
    )
    blocks = list(media.iter_audio_blocks(clip, block_samples=10_000))
    assert [b.shape for b in blocks] == [(6, 10_000)] * 4 + [(6, 8000)]
    assert all(b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), media.read_audio(clip)[0])


@pytest.mark.parametrize("native_rate", [22050, 44100, 48000])
def test_analysis_audio_is_mono_at_11025(tmp_path, native_rate):
    written = _signal(2, native_rate, seconds=1.5)
    written[1] = written[0]
    clip = media.make_test_clip(
        tmp_path / "a.mkv", 1.5, 32, 32, sample_rate=native_rate, audio=written, audio_codec="flac"
    )
    mono = media.read_analysis_audio(clip)
    assert mono.ndim == 1 and mono.dtype == np.float32
    assert abs(mono.size - written.shape[1] * 11025 / native_rate) <= 1
    # FFmpeg's stereo downmix is (L + R) / sqrt(2); the 300 Hz tone survives resampling in time
    t = np.arange(mono.size) / 11025
    expected = np.sqrt(2) * 0.3 * np.sin(2 * np.pi * 300 * t) * np.minimum(1.0, t * 5)
    assert _snr_db(expected[500:-500], mono[500:-500]) > 30
    blocks = list(media.iter_analysis_audio(clip, block_samples=1000))
    assert all(b.shape == (1000,) for b in blocks[:-1]) and 0 < blocks[-1].size <= 1000
    np.testing.assert_array_equal(np.concatenate(blocks), mono)
    assert media.read_analysis_audio(clip, 8000).size == pytest.approx(
        written.shape[1] * 8000 / native_rate, abs=1
    )


# ---------------------------------------------------------------------------------------------------
# video


def test_frame_size_for():
    assert media.frame_size_for(1920, 1080, 160) == (288, 160)
    assert media.frame_size_for(1080, 1920, 160) == (160, 288)
    assert media.frame_size_for(640, 480, 224) == (304, 224)
    assert media.frame_size_for(1920, 1080, 224, multiple=32) == (384, 224)
    assert media.frame_size_for(4000, 100, 10) == (400, 16)  # never below `multiple`
    with pytest.raises(InputError):
        media.frame_size_for(0, 100, 160)


def _reference_samples(clip: Path, frames_per_second: float, size: tuple[int, int]) -> list[np.ndarray]:
    """Every frame decoded (same decoder options), each sample the last frame at or before its time."""
    info = media.probe(clip)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = dict(decode.FAST_DECODE_OPTIONS)
        frames = [(f.pts * float(stream.time_base), f) for f in container.decode(stream)]
        times = np.arange(int(np.ceil(info.duration_seconds * frames_per_second - 1e-9))) / frames_per_second
        out = []
        for t in times:
            before = [f for ft, f in frames if ft <= t + 1e-3] or [frames[0][1]]
            out.append(decode._display_rgb(before[-1], size, info.rotation_degrees))
    return out


@pytest.mark.parametrize("frames_per_second", [2.0, 7.0])
def test_sampled_frames_are_the_frames_shown_at_their_times(clip_factory, frames_per_second):
    clip = clip_factory("a.mp4")  # x264 with B-frames: some frames are skipped, never a sampled one
    assert media.plan_frame_decoding(clip, frames_per_second) == "all"
    calls = []
    frames = list(
        media.iter_sampled_frames(clip, frames_per_second, 96, progress=lambda d, t: calls.append((d, t)))
    )
    expected_times = [i / frames_per_second for i in range(int(np.ceil(2.0 * frames_per_second)))]
    assert [t for t, _ in frames] == pytest.approx(expected_times)
    assert all(rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8 for _, rgb in frames)
    for (_, rgb), reference in zip(
        frames, _reference_samples(clip, frames_per_second, (128, 96)), strict=True
    ):
        np.testing.assert_array_equal(rgb, reference)
    x_red, _ = _centre(frames[0][1], "red")
    x_blue, _ = _centre(frames[0][1], "blue")
    assert x_red < 1 / 3 and x_blue > 2 / 3  # the red performer on the left, the blue on the right
    assert len(calls) == len(frames) and calls[-1][0] == pytest.approx(calls[-1][1], abs=1e-6)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_keyframe_only_decoding_when_keyframes_are_dense(clip_factory):
    dense = clip_factory("gop30.mp4", seconds=4.0, keyframe_interval=30)
    sparse = clip_factory("gop250.mp4", seconds=4.0)
    assert media.plan_frame_decoding(dense, 1.0) == "keyframes"
    assert media.plan_frame_decoding(dense, 2.0) == "all"  # no keyframe near 0.5 s
    assert media.plan_frame_decoding(sparse, 1.0) == "all"
    dense_frames = list(media.iter_sampled_frames(dense, 1.0, 96))
    assert [t for t, _ in dense_frames] == [0.0, 1.0, 2.0, 3.0]
    assert [t for t, _ in media.iter_sampled_frames(sparse, 1.0, 96)] == [0.0, 1.0, 2.0, 3.0]
    # the keyframes sit exactly on the sample times, so they are the frames shown there
    for (_, rgb), reference in zip(dense_frames, _reference_samples(dense, 1.0, (128, 96)), strict=True):
        np.testing.assert_array_equal(rgb, reference)


@pytest.mark.parametrize("reuse_seconds", [1.5, 10.0])
def test_keyframe_reuse_on_long_gops(clip_factory, monkeypatch, reuse_seconds):
    clip = clip_factory("gop250.mp4", seconds=4.0)  # one keyframe, at 0 s
    exact = _reference_samples(clip, 1.0, (128, 96))
    monkeypatch.setattr(decode, "KEYFRAME_REUSE_SECONDS", reuse_seconds)
    with av.open(str(clip)) as container:
        plan = decode._plan(container, container.streams.video[0], 1.0, media.probe(clip).duration_seconds)
    frames = [rgb for _, rgb in media.iter_sampled_frames(clip, 1.0, 96)]
    assert len(frames) == 4 and plan.mode == "all"
    for second, rgb in enumerate(frames):
        # within reuse_seconds of the keyframe: the keyframe; beyond: the exact frame shown then
        np.testing.assert_array_equal(rgb, exact[0] if second <= reuse_seconds else exact[second])
    assert not np.array_equal(exact[0], exact[3])  # the picture moves, so the check above can fail
    if reuse_seconds >= 4.0:
        assert len(plan.discard_pts) == 119  # every frame but the keyframe is left undecoded
    else:
        assert plan.discard_pts and min(plan.discard_pts) > plan.chosen_pts[-1]  # only after the last sample's


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_honoured(clip_factory, suffix, rotation):
    clip = clip_factory(f"rot{rotation}{suffix}", rotation_degrees=rotation, seconds=1.0)
    info = media.probe(clip)
    assert info.rotation_degrees == rotation
    portrait = rotation in (90, 270)
    assert (info.width, info.height) == ((120, 160) if portrait else (160, 120))
    [(_, small)] = list(media.iter_sampled_frames(clip, 1.0, 96))
    assert small.shape[:2] == ((128, 96) if portrait else (96, 128))
    full = media.read_frame(clip, 0.0)
    assert full.shape[:2] == (info.height, info.width)
    # coded: red on the left, blue on the right. Turned clockwise by 90 degrees the left side is at the
    # top; by 180 the red is on the right; by 270 (counter-clockwise 90) the left side is at the bottom.
    for rgb in (small, full):
        (xr, yr), (xb, yb) = _centre(rgb, "red"), _centre(rgb, "blue")
        if rotation == 90:
            assert yr < 1 / 3 and yb > 2 / 3 and 0.3 < xr < 0.7
        elif rotation == 180:
            assert xr > 2 / 3 and xb < 1 / 3
        else:
            assert yr > 2 / 3 and yb < 1 / 3 and 0.3 < xr < 0.7


def test_read_frame(clip_factory):
    clip = clip_factory("a.mp4")
    frame = media.read_frame(clip, 1.0)
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    with pytest.raises(InputError, match="outside"):
        media.read_frame(clip, 5.0)


# ---------------------------------------------------------------------------------------------------
# errors


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def test_unreadable_files(tmp_path, clip_factory):
    with pytest.raises(MediaError, match="does not exist") as error:
        media.probe(tmp_path / "missing.mp4")
    _one_line(error)
    with pytest.raises(MediaError, match="is a directory") as error:
        media.probe(tmp_path)
    _one_line(error)
    text = tmp_path / "notes.mp4"
    text.write_text("these are not the frames you are looking for\n" * 50)
    for call in (media.probe, media.read_audio, lambda p: list(media.iter_sampled_frames(p, 1.0, 96))):
        with pytest.raises(MediaError, match="not a media file") as error:
            call(text)
        assert "notes.mp4" in _one_line(error)
    data = clip_factory("a.mp4").read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) // 3])  # the index (moov) is at the end: unreadable
    with pytest.raises(MediaError) as error:
        media.probe(broken)
    _one_line(error)


def test_missing_streams(clip_factory):
    silent = clip_factory("silent.mp4", with_audio=False)
    info = media.probe(silent)
    assert info.has_video and not info.has_audio and info.sample_rate == 0 and info.channel_layout == ""
    with pytest.raises(MediaError, match="no audio stream in silent.mp4"):
        media.require_audio(info)
    media.require_video(info)
    for call in (media.read_audio, media.read_analysis_audio, lambda p: list(media.iter_audio_blocks(p))):
        with pytest.raises(MediaError, match="no audio stream"):
            call(silent)
    blind = clip_factory("audio-only.mkv", with_video=False)
    info = media.probe(blind)
    assert info.has_audio and not info.has_video and (info.width, info.height) == (0, 0)
    with pytest.raises(MediaError, match="no video stream in audio-only.mkv"):
        media.require_video(info)
    with pytest.raises(MediaError, match="no video stream"):
        list(media.iter_sampled_frames(blind, 1.0, 96))
    assert media.read_audio(blind)[0].shape[0] == 2


def test_bad_arguments(clip_factory, tmp_path):
    clip = clip_factory("a.mp4")
    with pytest.raises(InputError, match="frames_per_second"):
        list(media.iter_sampled_frames(clip, 0.0, 96))
    with pytest.raises(InputError, match="48000"):
        media.make_test_clip(tmp_path / "x.webm", 1.0, sample_rate=44100)
    with pytest.raises(InputError, match="even"):
        media.make_test_clip(tmp_path / "x.mp4", 1.0, width=161)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------
# writing


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_write_audio_round_trip(tmp_path, suffix, channels, rate):
    rng = np.random.default_rng(channels)
    x = np.clip(rng.standard_normal((channels, 5000)) * 0.25, -0.99, 0.99).astype(np.float32)
    path = media.write_audio(tmp_path / f"out{suffix}", x, rate)
    info = media.probe(path)
    assert (info.sample_rate, info.num_channels) == (rate, channels)
    assert info.channel_layout == {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    y, r = media.read_audio(path)
    assert r == rate and y.shape == x.shape
    if suffix == ".wav":  # 32-bit float: exact
        np.testing.assert_array_equal(y, x)
    else:  # 24-bit: within one quantisation step
        assert np.abs(y - x).max() <= FLAC_STEP
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]  # no temp files left


def test_flac_clips_and_wav_keeps_peaks_above_full_scale(tmp_path):
    x = np.array([[1.5, -1.5, 0.5]], dtype=np.float32)
    np.testing.assert_array_equal(media.read_audio(media.write_audio(tmp_path / "a.wav", x, 8000))[0], x)
    y, _ = media.read_audio(media.write_audio(tmp_path / "a.flac", x, 8000))
    np.testing.assert_allclose(y, [[1.0 - FLAC_STEP, -1.0, 0.5]], atol=FLAC_STEP)


def test_writing_is_atomic(tmp_path):
    with pytest.raises(RuntimeError):
        with media.AudioWriter(tmp_path / "x.wav", 44100, "stereo") as writer:
            writer.write(np.zeros((2, 100), np.float32))
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    # a failed write leaves the file that was there untouched, and no temp file
    target = media.write_audio(tmp_path / "keep.flac", np.full((1, 10), 0.5, np.float32), 8000)
    before = target.read_bytes()
    bad = np.zeros((1, 200_000), np.float32)
    bad[0, -1] = np.nan  # found in the last block, after others were written
    with pytest.raises(InputError, match="NaN"):
        media.write_audio(target, bad, 8000)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.flac"]
    with pytest.raises(InputError, match="audio files end in .wav, .flac, .mp3, .m4a, .opus"):
        media.AudioWriter(tmp_path / "x.aiff", 44100, "stereo")
    with pytest.raises(InputError, match="5.1"):
        media.write_audio(tmp_path / "y.wav", np.zeros((2, 10), np.float32), 8000, channel_layout="5.1")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.flac"]


def test_protect_refuses_to_overwrite_the_source(clip_factory, tmp_path):
    source = tmp_path / "clip.wav"
    media.write_audio(source, np.zeros((1, 10), np.float32), 8000)
    before = source.read_bytes()
    for path in (source, tmp_path / "sub" / ".." / "clip.wav"):
        with pytest.raises(InputError, match="source clip"):
            media.write_audio(path, np.ones((1, 10), np.float32) * 0.1, 8000, protect=[source])
    with pytest.raises(InputError, match="source clip"):
        media.AudioWriter(source, 8000, "mono", protect=[source])
    assert source.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["clip.wav"]
    media.write_audio(tmp_path / "other.wav", np.zeros((1, 10), np.float32), 8000, protect=[source])


def test_png_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    media.write_png(tmp_path / "x.png", image)
    np.testing.assert_array_equal(media.read_png(tmp_path / "x.png"), image)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
