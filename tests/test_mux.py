"""The video with its new sound: stream-copied picture, replaced audio in sync, multitrack files, errors."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pixelsep_plugin import media
from pixelsep_plugin.errors import Cancelled, InputError, MediaError

RATE = 44100
FLAC_STEP = 2.0**-23
MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
CHAPTERS = [("Intro", 0, 800), ("Verse", 800, 1600)]  # (title, start ms, end ms)


def _noise(num_channels: int, num_samples: int, seed: int, level: float = 0.2) -> np.ndarray:
    """float32 (channels, n) white noise: its autocorrelation has one sharp peak, so a lag shows at once."""
    return (np.random.default_rng(seed).standard_normal((num_channels, num_samples)) * level).astype(np.float32)


def _coloured_noise(num_channels: int, num_samples: int, seed: int) -> np.ndarray:
    """float32 (channels, n) noise low-passed by an 8-tap Hann window: still one sharp correlation peak, and
    AAC keeps it at about 19 dB SNR (white noise it codes at about 1 dB)."""
    white = np.random.default_rng(seed).standard_normal((num_channels, num_samples + 7))
    kernel = np.hanning(10)[1:-1]
    kernel /= np.sqrt(np.sum(kernel**2))
    return (np.stack([np.convolve(row, kernel, mode="valid") for row in white]) * 0.15).astype(np.float32)


def _picture(index: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 (height, width, 3): a gradient with a square that moves one pixel per frame."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = np.linspace(20, 200, width, dtype=np.uint8)[None, :]
    rgb[..., 2] = 90
    x = index % (width - 20)
    rgb[40:60, x : x + 20] = (250, 250, 40)
    return rgb


def _write_fixture(
    path: Path,
    audio: np.ndarray | None,
    sample_rate: int = RATE,
    audio_codec: str = "aac",
    audio_offset_seconds: float = 0.0,
    rotation_degrees: int = 0,
    seconds: float = 2.0,
    fps: int = 25,
    extras: bool = False,
    video_offset_frames: int = 0,
) -> Path:
    """A clip written with PyAV: H.264 160x120 (VP9 for .webm) and ``audio`` (float32 (2, n)) whose first
    sample has the time ``audio_offset_seconds`` (the picture starts at ``video_offset_frames / fps``).

    extras: also a container title and artist, stream titles, a language, two chapters, a subtitle
    stream (mov_text in MP4/MOV, SubRip in MKV), a second audio stream ("commentary") and, in MP4, a
    data stream (bin_data).
    """
    muxer = MUXERS[path.suffix]
    with av.open(str(path), mode="w", format=muxer) as container:
        video = container.add_stream("libvpx-vp9" if muxer == "webm" else "libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        video.options = {"deadline": "realtime", "cpu-used": "8"} if muxer == "webm" else {"preset": "veryfast"}
        if rotation_degrees:
            video.set_display_rotation(-rotation_degrees)
        streams = []
        if audio is not None:
            streams.append(container.add_stream(audio_codec, rate=sample_rate, layout="stereo"))
        subtitle = data = None
        if extras:
            container.metadata.update({"title": "Concert", "artist": "The Band"})
            video.metadata["title"] = "camera"
            streams[0].metadata.update({"title": "live mix", "language": "eng"})
            streams.append(container.add_stream(audio_codec, rate=sample_rate, layout="stereo"))
            streams[1].metadata["title"] = "commentary"
            subtitle = container.add_mux_stream("subrip" if muxer == "matroska" else "mov_text")
            if muxer == "mp4":
                data = container.add_data_stream("bin_data")
            container.set_chapters(
                [
                    {"id": i + 1, "start": a, "end": b, "time_base": Fraction(1, 1000), "metadata": {"title": t}}
                    for i, (t, a, b) in enumerate(CHAPTERS)
                ]
            )
        for stream in streams:
            if audio_codec == "flac":
                stream.format = "s32"
        num_frames = int(round(seconds * fps))
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(_picture(index, 160, 120), format="rgb24")
            frame.pts = index + video_offset_frames
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        offset = int(round(audio_offset_seconds * sample_rate))
        for number, stream in enumerate(streams):
            samples = audio if number == 0 else audio[::-1] * 0.5
            for start in range(0, samples.shape[1], 4096):
                piece = np.ascontiguousarray(samples[:, start : start + 4096])
                frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = sample_rate, offset + start
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        if subtitle is not None:
            for index, text in enumerate(["hello", "world"]):
                payload = text.encode() if muxer == "matroska" else struct.pack(">H", len(text)) + text.encode()
                packet = av.Packet(payload)
                packet.stream, packet.time_base = subtitle, Fraction(1, 1000)
                packet.pts = packet.dts = 200 + 800 * index
                packet.duration = 600
                container.mux(packet)
        if data is not None:
            for index in range(3):
                packet = av.Packet(b"telemetry %d" % index)
                packet.stream, packet.time_base = data, Fraction(1, fps)
                packet.pts = packet.dts = 10 * index
                container.mux(packet)
    return path


def _packets(path: Path, kind: str, number: int = 0) -> list[tuple[bytes, Fraction | None, Fraction | None, bool]]:
    """(bytes, pts s, dts s, keyframe) of every packet of the ``number``-th stream of type ``kind``."""
    with av.open(str(path)) as container:
        stream = [s for s in container.streams if s.type == kind][number]
        base = stream.time_base
        return [
            (
                bytes(packet),
                None if packet.pts is None else packet.pts * base,
                None if packet.dts is None else packet.dts * base,
                packet.is_keyframe,
            )
            for packet in container.demux(stream)
            if packet.size
        ]


def _audio_start_seconds(path: Path, number: int = 0) -> Fraction:
    """The start of the ``number``-th audio stream, in seconds from the picture's start."""
    with av.open(str(path)) as container:
        audio, video = container.streams.audio[number], container.streams.video[0]
        return audio.start_time * audio.time_base - video.start_time * video.time_base


def _decode(path: Path, number: int = 0) -> tuple[np.ndarray, Fraction]:
    """The ``number``-th audio stream as float32 (channels, n), and its first decoded frame's time (s)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[number]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
        frames = [out for frame in container.decode(stream) for out in resampler.resample(frame)]
        frames += resampler.resample(None)
    return np.concatenate([f.to_ndarray() for f in frames], axis=1), frames[0].pts * frames[0].time_base


def _best_lag(decoded: np.ndarray, reference: np.ndarray, max_lag: int = 2048) -> int:
    """The lag (samples, -max_lag..max_lag) at which ``decoded`` matches ``reference`` best (channel 0)."""
    length = reference.shape[1] - 2 * max_lag
    ref = reference[0, max_lag : max_lag + length].astype(np.float64)
    scores = [
        float(np.dot(decoded[0, max_lag + lag : max_lag + lag + length].astype(np.float64), ref))
        for lag in range(-max_lag, max_lag + 1)
    ]
    return int(np.argmax(scores)) - max_lag


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mux")


@pytest.fixture(scope="module")
def rich_clips(folder) -> dict[str, Path]:
    """An MP4 and an MKV with rotation, metadata, chapters, subtitles, a second audio stream (and data in MP4)."""
    audio = _noise(2, int(2.0 * RATE), seed=1)
    return {
        ".mp4": _write_fixture(folder / "rich.mp4", audio, rotation_degrees=90, extras=True),
        ".mkv": _write_fixture(folder / "rich.mkv", audio, audio_codec="flac", rotation_degrees=90, extras=True),
    }


# ---------------------------------------------------------------------------------------------------
# mux_new_audio: what is kept


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_everything_but_the_first_audio_is_copied(rich_clips, tmp_path, suffix):
    clip = rich_clips[suffix]
    info = media.probe(clip)
    new = _noise(2, info.num_audio_samples, seed=7)
    out = media.mux_new_audio(clip, new, RATE, "stereo", tmp_path / f"out{suffix}")
    assert out == tmp_path / f"out{suffix}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out{suffix}"]  # no temp file left

    # the picture: every packet byte for byte, with its pts and dts
    assert _packets(out, "video") == _packets(clip, "video")
    assert len(_packets(clip, "video")) == 50
    # the second audio stream, the subtitles and (MP4) the data stream, packet for packet
    assert _packets(out, "audio", 1) == _packets(clip, "audio", 1)
    assert _packets(out, "subtitle") == _packets(clip, "subtitle")
    assert [p[0][-5:] for p in _packets(clip, "subtitle") if len(p[0]) > 2] == [b"hello", b"world"]
    if suffix == ".mp4":
        assert _packets(out, "data") == _packets(clip, "data")
        assert len(_packets(clip, "data")) >= 2

    with av.open(str(clip)) as before, av.open(str(out)) as after:
        assert [s.type for s in after.streams] == [s.type for s in before.streams]
        assert after.metadata.get("title") == "Concert"
        assert (after.metadata.get("artist") or after.metadata.get("ARTIST")) == "The Band"
        chapters = [
            (c["metadata"].get("title"), float(c["start"] * c["time_base"]), float(c["end"] * c["time_base"]))
            for c in after.chapters()
        ]
        assert [c[0] for c in chapters] == ["Intro", "Verse"]
        np.testing.assert_allclose([c[1:] for c in chapters], [[0.0, 0.8], [0.8, 1.6]], atol=1e-3)

        def title(stream: av.stream.Stream) -> str | None:
            return stream.metadata.get("title") or stream.metadata.get("name")

        assert [title(s) for s in after.streams] == [title(s) for s in before.streams]
        assert title(after.streams.video[0]) == "camera"
        assert title(after.streams.audio[0]) == "live mix"
        assert after.streams.audio[0].metadata.get("language") == "eng"
        assert after.streams.audio[0].codec_context.name == ("aac" if suffix == ".mp4" else "flac")
        assert after.streams.audio[1].codec_context.name == before.streams.audio[1].codec_context.name

    out_info = media.probe(out)
    assert out_info.rotation_degrees == info.rotation_degrees == 90
    assert (out_info.width, out_info.height) == (120, 160)


def test_rotation_kept_for_every_angle(folder, tmp_path):
    audio = _noise(2, RATE, seed=2)
    for rotation in (90, 180, 270):
        clip = media.make_test_clip(folder / f"rot{rotation}.mp4", 1.0, 160, 120, rotation_degrees=rotation)
        out = media.mux_new_audio(clip, audio, RATE, "stereo", tmp_path / f"rot{rotation}.mp4")
        assert media.probe(out).rotation_degrees == rotation


# ---------------------------------------------------------------------------------------------------
# mux_new_audio: the samples and their sync


@pytest.mark.parametrize(
    ("suffix", "audio_codec", "codec"),
    [(".mkv", "flac", None), (".mp4", "flac", "flac"), (".mov", "aac", "pcm_s24le"), (".mp4", "aac", "alac")],
)
@pytest.mark.parametrize("offset", [0.0, 0.75])
def test_lossless_new_audio_is_the_given_samples_at_the_original_start(
    folder, tmp_path, suffix, audio_codec, codec, offset
):
    name = f"lossless_{audio_codec}_{offset}{suffix}"
    clip = folder / name
    if not clip.exists():
        _write_fixture(clip, _noise(2, int(1.5 * RATE), seed=3), audio_codec=audio_codec, audio_offset_seconds=offset)
    if audio_codec == "flac":  # the input really starts there: FLAC has no priming, so its start is exact
        assert media.probe(clip).audio_offset_seconds == pytest.approx(offset, abs=0.5 / RATE)
    new = _noise(2, media.read_audio(clip)[0].shape[1], seed=8)
    new[:, 100] = 1.0  # full scale: clipped to 1 - 2**-23 by 24-bit codecs
    blocks = (new[:, start : start + 10_000] for start in range(0, new.shape[1], 10_000))
    out = media.mux_new_audio(clip, blocks, RATE, "stereo", tmp_path / f"out{suffix}", codec=codec)

    decoded, rate = media.read_audio(out)
    assert rate == RATE
    assert decoded.shape == new.shape
    np.testing.assert_allclose(decoded, new, atol=FLAC_STEP)
    assert _audio_start_seconds(out) == _audio_start_seconds(clip)  # exactly
    assert abs(media.probe(out).audio_offset_seconds - media.probe(clip).audio_offset_seconds) < 1 / RATE


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
@pytest.mark.parametrize(
    ("audio_codec", "offset"),
    [("flac", 0.0), ("flac", 0.01), ("flac", 0.5), ("flac", 1.75), ("aac", 0.0), ("aac", 1.0)],
)
def test_aac_output_is_in_sync_to_the_sample(folder, tmp_path, suffix, audio_codec, offset):
    """Also when the audio starts after the picture, by less or more than AAC's 1024 priming samples."""
    clip = folder / f"sync_{audio_codec}_{offset}.mp4"
    if not clip.exists():
        _write_fixture(clip, _noise(2, int(1.5 * RATE), seed=4), audio_codec=audio_codec, audio_offset_seconds=offset)
    with av.open(str(clip)) as container:  # what the input holds, as FFmpeg reads it
        audio, video = container.streams.audio[0], container.streams.video[0]
        assert video.start_time == 0
        start = audio.start_time * audio.time_base
    if audio_codec == "flac":
        assert start == Fraction(round(offset * RATE), RATE)
    else:  # FFmpeg's muxer starts a late AAC stream at its priming packet, in whole milliseconds
        assert abs(float(start) - (offset - 1024 / RATE)) < 1e-3 or offset == 0
    new = _coloured_noise(2, media.read_audio(clip)[0].shape[1], seed=9)
    out = media.mux_new_audio(clip, new, RATE, "stereo", tmp_path / f"out{suffix}")

    decoded, first_frame_seconds = _decode(out)
    assert _best_lag(decoded, new) == 0  # the decoded stream starts with the new audio's sample 0
    assert abs(first_frame_seconds - start) <= Fraction(1, RATE)  # ... at the original audio's start
    assert abs(_audio_start_seconds(out) - _audio_start_seconds(clip)) <= Fraction(1, RATE)
    assert decoded.shape[1] >= new.shape[1]
    snr = 10 * np.log10(np.sum(new**2) / np.sum((decoded[:, : new.shape[1]] - new) ** 2))
    assert snr > 12


def test_audio_that_starts_before_the_picture(folder, tmp_path):
    clip = _write_fixture(folder / "late_picture.mp4", _noise(2, 2 * RATE, seed=17), video_offset_frames=12)
    assert media.probe(clip).audio_offset_seconds == pytest.approx(-0.48)
    new = _coloured_noise(2, media.read_audio(clip)[0].shape[1], seed=18)
    out = media.mux_new_audio(clip, new, RATE, "stereo", tmp_path / "out.mp4")
    assert _packets(out, "video") == _packets(clip, "video")
    decoded, first_frame_seconds = _decode(out)
    assert _best_lag(decoded, new) == 0
    assert first_frame_seconds == 0
    assert _audio_start_seconds(out) == _audio_start_seconds(clip) == Fraction(-12, 25)


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_matroska_start_is_kept_to_the_millisecond(folder, tmp_path, offset):
    clip = folder / f"mkv_{offset}.mkv"
    if not clip.exists():
        _write_fixture(clip, _noise(2, RATE, seed=5), audio_codec="flac", audio_offset_seconds=offset)
    assert media.probe(clip).audio_offset_seconds == pytest.approx(offset)
    new = _noise(2, RATE, seed=10)
    for codec in ("flac", "aac"):
        out = media.mux_new_audio(clip, new, RATE, "stereo", tmp_path / f"{codec}.mkv", codec=codec)
        decoded, first_frame_seconds = _decode(out)
        assert _best_lag(decoded, new) == 0
        assert _audio_start_seconds(out) == _audio_start_seconds(clip)
        assert first_frame_seconds == Fraction(offset).limit_denominator(1000)


def test_webm_gets_opus(folder, tmp_path):
    clip = media.make_test_clip(folder / "clip.webm", 1.0, 160, 120, sample_rate=48000)
    new = _coloured_noise(2, 48000, seed=11)
    out = media.mux_new_audio(clip, new, 48000, "stereo", tmp_path / "out.webm")
    assert _packets(out, "video") == _packets(clip, "video")
    decoded, first_frame_seconds = _decode(out)
    assert _best_lag(decoded, new, max_lag=1024) == 0
    assert first_frame_seconds == 0
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
    with pytest.raises(InputError, match="44100 Hz"):
        media.mux_new_audio(clip, _noise(2, RATE, 0), RATE, "stereo", tmp_path / "x.webm")


def test_clip_without_audio_gets_audio_at_the_picture_start(folder, tmp_path):
    clip = media.make_test_clip(folder / "silent.mp4", 1.0, 160, 120, with_audio=False)
    new = _noise(1, RATE, seed=12)
    out = media.mux_new_audio(clip, new, RATE, "mono", tmp_path / "out.mp4", codec="flac")
    np.testing.assert_allclose(media.read_audio(out)[0], new, atol=FLAC_STEP)
    assert media.probe(out).audio_offset_seconds == 0.0
    assert _packets(out, "video") == _packets(clip, "video")


def test_packets_are_interleaved_and_progress_is_reported(folder, tmp_path):
    """Blocks are encoded as the picture is copied, not after it (so they need not sit in memory)."""
    clip = media.make_test_clip(folder / "long.mp4", 4.0, 160, 120, fps=25)
    info = media.probe(clip)
    pulled: list[int] = []
    calls: list[tuple[float, float]] = []

    def blocks():
        for start in range(0, info.num_audio_samples, 4410):
            pulled.append(len(calls))
            yield _noise(2, min(4410, info.num_audio_samples - start), seed=start)

    out = media.mux_new_audio(
        clip, blocks(), RATE, "stereo", tmp_path / "out.mkv", progress=lambda done, total: calls.append((done, total))
    )
    assert len(pulled) == -(-info.num_audio_samples // 4410)
    assert pulled[-1] > pulled[0]  # pulled while progress went on, not all at the start
    done = [c[0] for c in calls]
    assert done == sorted(done) and len(calls) >= 4
    assert calls[-1] == (pytest.approx(info.duration_seconds, abs=0.05),) * 2
    with av.open(str(out)) as container:  # file order: never more than half a second between streams
        latest: dict[str, float] = {}
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                latest[packet.stream.type] = float(packet.pts * packet.time_base)
                if len(latest) == 2:
                    assert abs(latest["audio"] - latest["video"]) < 0.5


# ---------------------------------------------------------------------------------------------------
# write_multitrack


@pytest.mark.parametrize(("clip_suffix", "suffix"), [(".mp4", ".mov"), (".mkv", ".mkv")])
def test_multitrack_holds_the_original_and_every_track(folder, tmp_path, clip_suffix, suffix):
    clip = folder / f"multi_source{clip_suffix}"
    if not clip.exists():
        codec = "flac" if clip_suffix == ".mkv" else "aac"
        _write_fixture(clip, _noise(2, int(1.5 * RATE), seed=6), audio_codec=codec, audio_offset_seconds=0.5)
    n = media.read_audio(clip)[0].shape[1]
    remix, drums, bass = _noise(2, n, 20), _noise(1, n, 21), _noise(2, n, 22)
    bass_blocks = (bass[:, start : start + 3000] for start in range(0, n, 3000))
    tracks = [
        media.AudioTrack("remix", remix, RATE, "stereo"),
        ("drums", drums, RATE, "mono"),
        ("bass", bass_blocks, RATE, "stereo"),
    ]
    out = media.write_multitrack(clip, tracks, tmp_path / f"multi{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"multi{suffix}"]

    lossless = "pcm_s24le" if suffix == ".mov" else "flac"
    with av.open(str(out)) as container:
        streams = list(container.streams)
        assert [s.type for s in streams] == ["video", "audio", "audio", "audio", "audio"]
        audio = container.streams.audio
        titles = [s.metadata.get("title") or s.metadata.get("name") for s in audio]
        assert titles == ["original", "remix", "drums", "bass"]
        if suffix == ".mov":
            assert [s.metadata.get("handler_name") for s in audio] == titles
        with av.open(str(clip)) as source:
            assert audio[0].codec_context.name == source.streams.audio[0].codec_context.name
        assert [s.codec_context.name for s in audio[1:]] == [lossless] * 3
        assert [s.channels for s in audio] == [2, 2, 1, 2]

    assert _packets(out, "video") == _packets(clip, "video")
    assert _packets(out, "audio", 0) == _packets(clip, "audio", 0)  # the original, byte for byte
    original, _ = media.read_audio(clip)
    np.testing.assert_array_equal(_decode(out, 0)[0][:, : original.shape[1]], original)
    for number, given in enumerate([remix, drums, bass], start=1):
        decoded, _ = _decode(out, number)
        assert decoded.shape == given.shape
        np.testing.assert_allclose(decoded, given, atol=FLAC_STEP)
    for number in range(4):  # all tracks start where the clip's audio starts
        assert _audio_start_seconds(out, number) == _audio_start_seconds(clip)


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_multitrack_original_that_starts_late_and_is_trimmed(folder, tmp_path, suffix):
    """An MP4 whose AAC starts late and whose edit list trims its priming (as mux_new_audio writes them)."""
    clip = folder / "late_trimmed.mp4"
    if not clip.exists():
        source = _write_fixture(
            folder / "late_source.mp4", _noise(2, RATE, 19), audio_codec="flac", audio_offset_seconds=0.5
        )
        media.mux_new_audio(source, _coloured_noise(2, RATE, 20), RATE, "stereo", clip)
    with av.open(str(clip)) as container:  # the first packet (priming) is before the stream's start
        stream = container.streams.audio[0]
        first = next(p for p in container.demux(stream) if p.size)
        assert first.pts * first.time_base < stream.start_time * stream.time_base == Fraction(1, 2)
    original, _ = media.read_audio(clip)
    out = media.write_multitrack(clip, [("remix", original, RATE, "stereo")], tmp_path / f"x{suffix}")
    decoded, first_frame_seconds = _decode(out, 0)
    with av.open(str(out)) as container:
        copied = container.streams.audio[0].codec_context.name == "aac"
    assert copied == (suffix == ".mov")  # Matroska cannot carry the trim: decoded and stored as FLAC there
    if copied:
        assert _packets(out, "audio", 0) == _packets(clip, "audio", 0)
        np.testing.assert_array_equal(decoded, original)
    else:
        np.testing.assert_allclose(decoded, original, atol=FLAC_STEP)
    assert first_frame_seconds == Fraction(1, 2)
    assert _audio_start_seconds(out, 0) == _audio_start_seconds(out, 1) == Fraction(1, 2)


def test_multitrack_keeps_metadata_chapters_and_rotation(rich_clips, tmp_path):
    clip = rich_clips[".mkv"]
    n = media.read_audio(clip)[0].shape[1]
    out = media.write_multitrack(clip, [("remix", _noise(2, n, 30), RATE, "stereo")], tmp_path / "x.mkv")
    with av.open(str(out)) as container:
        assert container.metadata.get("title") == "Concert"
        assert [c["metadata"]["title"] for c in container.chapters()] == ["Intro", "Verse"]
        assert [s.type for s in container.streams] == ["video", "audio", "audio"]
        assert container.streams.audio[0].metadata.get("language") == "eng"
    assert media.probe(out).rotation_degrees == 90


def test_multitrack_peaks(folder, tmp_path):
    clip = media.make_test_clip(folder / "peaks.mkv", 0.5, 160, 120, audio_codec="flac")
    n = media.read_audio(clip)[0].shape[1]
    loud = np.tile(np.linspace(-1.5, 1.5, n, dtype=np.float32), (2, 1))
    clipped = media.write_multitrack(clip, [("loud", loud, RATE, "stereo")], tmp_path / "clipped.mov")
    np.testing.assert_allclose(_decode(clipped, 1)[0], np.clip(loud, -1, 1 - FLAC_STEP), atol=FLAC_STEP)
    kept = media.write_multitrack(clip, [("loud", loud, RATE, "stereo")], tmp_path / "kept.mov", codec="pcm_f32le")
    np.testing.assert_array_equal(_decode(kept, 1)[0], loud)
    short = media.write_multitrack(clip, [("loud", loud, RATE, "stereo")], tmp_path / "short.mkv", codec="pcm_s16le")
    np.testing.assert_allclose(_decode(short, 1)[0], np.clip(loud, -1, 1 - 2.0**-15), atol=2.0**-15)


@pytest.mark.parametrize(("clip_name", "suffix"), [("aac.mp4", ".mkv"), ("flac.mkv", ".mov"), ("opus.webm", ".mkv")])
def test_multitrack_original_is_decoded_when_a_copy_would_not_keep_it(folder, tmp_path, clip_name, suffix):
    """AAC from MP4 into MKV (its priming is trimmed by an MP4 edit list); FLAC into MOV (not allowed)."""
    clip = folder / f"fallback_{clip_name}"
    if not clip.exists():
        if clip_name == "opus.webm":
            media.make_test_clip(clip, 1.0, 160, 120, sample_rate=48000)
        else:
            # an MP4's AAC starting at 0: its first packet (priming) is before 0 and the edit list trims it
            codec, offset = ("flac", 0.25) if clip_name.endswith(".mkv") else ("aac", 0.0)
            _write_fixture(clip, _noise(2, RATE, seed=13), audio_codec=codec, audio_offset_seconds=offset)
    original, rate = media.read_audio(clip)
    if clip_name == "opus.webm" and suffix == ".mkv":  # Matroska to Matroska: copied, codec delay and all
        out = media.write_multitrack(clip, [("remix", original, rate, "stereo")], tmp_path / f"x{suffix}")
        assert _packets(out, "audio", 0) == _packets(clip, "audio", 0)
        return
    out = media.write_multitrack(clip, [("remix", original, rate, "stereo")], tmp_path / f"x{suffix}")
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == ("flac" if suffix == ".mkv" else "pcm_s24le")
        metadata = container.streams.audio[0].metadata
        assert (metadata.get("title") or metadata.get("name")) == "original"
    decoded, _ = _decode(out, 0)
    np.testing.assert_allclose(decoded, original, atol=FLAC_STEP)
    assert abs(_audio_start_seconds(out) - _audio_start_seconds(clip)) <= Fraction(1, 1000)
    video_in = [(p[0], round(float(p[1]), 3)) for p in _packets(clip, "video")]
    video_out = [(p[0], round(float(p[1]), 3)) for p in _packets(out, "video")]
    assert video_out == video_in  # not shifted


# ---------------------------------------------------------------------------------------------------
# errors


def test_the_source_is_never_written(folder, tmp_path):
    clip = media.make_test_clip(tmp_path / "clip.mp4", 0.5, 160, 120)
    before = clip.read_bytes()
    audio = _noise(2, RATE // 2, seed=14)
    for target in (clip, tmp_path / "sub" / ".." / "clip.mp4"):
        with pytest.raises(InputError, match="source clip"):
            media.mux_new_audio(clip, audio, RATE, "stereo", target)
    with pytest.raises(InputError, match="source clip"):
        media.write_multitrack(
            clip, [("remix", audio, RATE, "stereo")], tmp_path / "clip.mov", protect=[tmp_path / "clip.mov"]
        )
    other = tmp_path / "other.mp4"
    other.write_bytes(b"precious")
    with pytest.raises(InputError, match="source clip"):
        media.mux_new_audio(clip, audio, RATE, "stereo", other, protect=[other])
    assert clip.read_bytes() == before
    assert other.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "other.mp4"]


def test_failures_leave_nothing_behind(folder, tmp_path):
    clip = media.make_test_clip(folder / "short.mp4", 1.0, 160, 120)
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous render")

    def bad_blocks():
        yield _noise(2, 30_000, seed=15)
        yield np.full((2, 10), np.nan, np.float32)

    with pytest.raises(InputError, match="NaN") as error:
        media.mux_new_audio(clip, bad_blocks(), RATE, "stereo", target)
    assert "\n" not in str(error.value)
    with pytest.raises(InputError, match=r"\(2, n\)"):
        media.mux_new_audio(clip, [_noise(1, 100, 0)], RATE, "stereo", target)

    def cancel(done: float, total: float) -> None:
        if done > 0.3:
            raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        media.mux_new_audio(clip, _noise(2, RATE, 16), RATE, "stereo", target, progress=cancel)
    with pytest.raises(Cancelled):
        media.write_multitrack(clip, [("a", _noise(2, RATE, 16), RATE, "stereo")], tmp_path / "m.mov", progress=cancel)
    assert target.read_bytes() == b"previous render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_unwritable_folder_is_one_line(folder, tmp_path):
    clip = media.make_test_clip(folder / "tiny.mp4", 0.5, 160, 120)
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(MediaError, match="choose a folder you can write to") as error:
        media.mux_new_audio(clip, _noise(2, 100, 0), RATE, "stereo", blocker / "out.mp4")
    assert "\n" not in str(error.value)
    with pytest.raises(MediaError, match="choose a folder you can write to"):
        media.write_multitrack(clip, [("a", _noise(2, 100, 0), RATE, "stereo")], blocker / "sub" / "out.mkv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_bad_arguments_are_refused_before_any_work(rich_clips, folder, tmp_path):
    clip = media.make_test_clip(folder / "args.mp4", 0.5, 160, 120)
    audio = _noise(2, 100, 0)
    cases = [
        (lambda: media.mux_new_audio(clip, audio, RATE, "stereo", tmp_path / "x.avi"), "written as .mp4"),
        (lambda: media.mux_new_audio(clip, audio, RATE, "stereo", tmp_path / "x.webm", codec="aac"), "cannot hold aac"),
        (lambda: media.mux_new_audio(clip, audio, RATE, "stereo", tmp_path / "x.mp4", codec="wma"), "unknown audio"),
        (
            lambda: media.mux_new_audio(clip, audio, RATE, "stereo", tmp_path / "x.mov", codec="flac"),
            "cannot hold flac",
        ),
        (lambda: media.mux_new_audio(clip, audio, 0, "stereo", tmp_path / "x.mp4"), "sample rate"),
        (lambda: media.mux_new_audio(clip, audio, RATE, "stereo-ish", tmp_path / "x.mp4"), "channel layout"),
        (lambda: media.mux_new_audio(clip, audio, 22050.5, "stereo", tmp_path / "x.mp4"), "sample rate"),
        (lambda: media.write_multitrack(clip, [], tmp_path / "x.mkv"), "at least one"),
        (lambda: media.write_multitrack(clip, [("a", audio, RATE, "stereo")], tmp_path / "x.mp4"), "written as .mkv"),
        (
            lambda: media.write_multitrack(clip, [("a", audio, RATE, "stereo")], tmp_path / "x.mkv", codec="aac"),
            "lossless",
        ),
        (lambda: media.write_multitrack(clip, [("", audio, RATE, "stereo")], tmp_path / "x.mkv"), "title"),
        # the clip's MP4 subtitles (mov_text) cannot go into Matroska
        (lambda: media.mux_new_audio(rich_clips[".mp4"], audio, RATE, "stereo", tmp_path / "x.mkv"), "write .mp4"),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=message) as error:
            call()
        assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MediaError, match="does not exist"):
        media.mux_new_audio(tmp_path / "missing.mp4", audio, RATE, "stereo", tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []
