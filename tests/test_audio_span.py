"""Exact span reads of a clip's native audio (media.span) and analyses that keep no copy of it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pixelsep_plugin import media
from pixelsep_plugin.errors import InputError, MediaError
from pixelsep_plugin.media import span
from pixelsep_plugin.media.span import AudioScan, AudioSpanReader, scan_audio

BLOCK = 4096  # small blocks, so that short clips have many


def _noisy_tones(seconds: float, sample_rate: int, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(3 * t)) + 0.2 * np.sin(2 * np.pi * 1250 * t)
    return np.stack([np.roll(tone, 37 * c) for c in range(channels)]).astype(np.float32)


CLIPS = {
    "aac.mp4": {},
    "mp3.mkv": {"audio_codec": "libmp3lame"},
    "opus.webm": {"sample_rate": 48000},
    "pcm.mov": {"audio_codec": "pcm_s16le"},
    "pcm.mkv": {"audio_codec": "pcm_s24le"},
}


def _late_audio_clip(
    path: Path, seconds: float = 6.0, delay_seconds: float = 0.5, rate: int = 44100, codec: str = "aac",
    gap_at_seconds: float | None = None,
) -> Path:
    """A Matroska clip whose audio starts ``delay_seconds`` after its video; with ``gap_at_seconds``
    the audio's timestamps also jump by half a second there (the samples themselves run on)."""
    audio = _noisy_tones(seconds, rate)
    with av.open(str(path), "w", format="matroska") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream(codec, rate=rate)
        sound.layout = "stereo"
        for i in range(int(seconds * 10) + 15):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 + i, np.uint8), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, 10)
            container.mux(video.encode(frame))
        offset = int(delay_seconds * rate)
        for start in range(0, audio.shape[1], 1024):
            if gap_at_seconds is not None and start >= gap_at_seconds * rate:
                offset = int((delay_seconds + 0.5) * rate)
            piece = np.ascontiguousarray(audio[:, start : start + 1024])
            if codec.startswith("pcm_s16"):
                piece = np.ascontiguousarray((piece * 32767).astype(np.int16).T.reshape(1, -1))
                frame = av.AudioFrame.from_ndarray(piece, format="s16", layout="stereo")
            else:
                frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="stereo")
            frame.sample_rate = rate
            frame.pts = offset + start
            frame.time_base = Fraction(1, rate)
            container.mux(sound.encode(frame))
        container.mux(video.encode(None))
        container.mux(sound.encode(None))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("span-clips")
    made = {}
    for name, kwargs in CLIPS.items():
        rate = kwargs.get("sample_rate", 44100)
        made[name] = media.make_test_clip(
            folder / name, 6.0, width=64, height=48, fps=10, audio=_noisy_tones(6.0, rate), **kwargs
        )
    made["late.mkv"] = _late_audio_clip(folder / "late.mkv")
    made["gap.mkv"] = _late_audio_clip(folder / "gap.mkv", codec="pcm_s16le", gap_at_seconds=3.0)
    return made


def _scan(path: Path) -> tuple[np.ndarray, AudioScan]:
    items = list(scan_audio(path, BLOCK))
    scan = items[-1]
    assert isinstance(scan, AudioScan)
    return np.concatenate(items[:-1], axis=1), scan


@pytest.mark.parametrize("name", [*CLIPS, "late.mkv", "gap.mkv"])
def test_spans_equal_the_sequential_decode(clips, name):
    path = clips[name]
    reference = np.concatenate(list(media.iter_audio_blocks(path)), axis=1)
    pieces, scan = _scan(path)
    np.testing.assert_array_equal(pieces, reference)  # the scan decodes exactly as iter_audio_blocks
    assert scan.num_samples == reference.shape[1] and scan.pts_consistent
    assert len(scan.checksums) == -(-scan.num_samples // BLOCK)
    n = scan.num_samples
    spans = [
        (0, 1), (0, 5000), (BLOCK - 3, BLOCK + 3), (5 * BLOCK, 7 * BLOCK), (n // 2 - 777, n // 2 + 12345),
        (n - 1, n), (n - 3 * BLOCK - 5, n), (7 * BLOCK + 1, 7 * BLOCK + 1), (2 * BLOCK, 2 * BLOCK + 1), (0, n),
    ]
    with AudioSpanReader(path, scan) as reader:
        for a, b in spans:
            got = reader.read(a, b)
            assert got.dtype == np.float32 and got.shape == (reference.shape[0], b - a)
            np.testing.assert_array_equal(got, reference[:, a:b], err_msg=f"{name} samples {a}:{b}")
        with pytest.raises(InputError):
            reader.read(0, n + 1)


def test_late_audio_has_its_own_origin(clips):
    path = clips["late.mkv"]
    _, scan = _scan(path)
    assert scan.frame_pts[0] > 0  # the audio's first frame is 0.5 s into the file
    assert scan.frame_positions[0] == 0


def test_a_gap_in_the_timestamps_is_mapped_by_the_frame_table(clips):
    """Positions come from the decoded frames' table, not from the pts: a jump in the pts (the
    samples run on without a gap, as a sequential decode gives them) still seeks exactly."""
    _, scan = _scan(clips["gap.mkv"])
    rate = scan.sample_rate
    steps = np.diff(scan.frame_pts) * 1e-3 * rate - np.diff(scan.frame_positions)  # Matroska: ms
    assert steps.max() > 0.4 * rate  # the jump is there
    reader = AudioSpanReader(clips["gap.mkv"], scan)
    assert reader.seeks_exactly([len(scan.checksums) - 2])


def test_seeking_is_exact_for_lossless_and_mp3(clips):
    for name in ("pcm.mov", "pcm.mkv", "mp3.mkv", "opus.webm"):
        _, scan = _scan(clips[name])
        reader = AudioSpanReader(clips[name], scan)
        blocks = [len(scan.checksums) // 2, len(scan.checksums) - 1]
        assert reader.seeks_exactly(blocks), name


def test_a_short_preroll_is_retried_longer(clips, monkeypatch):
    path = clips["pcm.mov"]
    reference = np.concatenate(list(media.iter_audio_blocks(path)), axis=1)
    _, scan = _scan(path)
    # a "pre-roll" that lands after the span: the first try finds samples missing
    monkeypatch.setattr(span, "PREROLL_SAMPLES", (-20000, 1))
    reader = AudioSpanReader(path, scan)
    a = 40 * BLOCK + 100
    np.testing.assert_array_equal(reader.read(a, a + 3000), reference[:, a : a + 3000])
    assert reader.seeks == 2


def test_last_resort_is_a_decode_from_the_start(clips, monkeypatch):
    path = clips["pcm.mov"]
    reference = np.concatenate(list(media.iter_audio_blocks(path)), axis=1)
    _, scan = _scan(path)
    monkeypatch.setattr(span, "PREROLL_SAMPLES", (-20000,))
    reader = AudioSpanReader(path, scan)
    a = 50 * BLOCK - 7
    np.testing.assert_array_equal(reader.read(a, a + 20000), reference[:, a : a + 20000])
    assert reader.seeks == 2
    assert not reader.seeks_exactly([50])


def test_a_read_that_follows_continues_the_decoder(clips):
    path = clips["pcm.mov"]
    _, scan = _scan(path)
    reader = AudioSpanReader(path, scan)
    for start in range(0, scan.num_samples - 3000, 3000):
        reader.read(start, start + 3000)
    assert reader.seeks == 1


def test_changed_audio_is_refused(clips, tmp_path):
    _, scan = _scan(clips["pcm.mov"])
    other = media.make_test_clip(tmp_path / "other.mov", 6.0, width=64, height=48, fps=10, audio_codec="pcm_s16le")
    with pytest.raises(MediaError, match="no longer decodes"):
        AudioSpanReader(other, scan).read(BLOCK, 2 * BLOCK)


def test_inconsistent_pts_cannot_be_read_by_span(clips):
    _, scan = _scan(clips["pcm.mov"])
    broken = AudioScan(**{**scan.__dict__, "pts_consistent": False})
    with pytest.raises(InputError):
        AudioSpanReader(clips["pcm.mov"], broken)


# ------------------------------------------------------------------------------------------------
# Analyses without a copy of the audio


@pytest.mark.parametrize("name", ["aac.mp4", "mp3.mkv", "pcm.mov", "late.mkv", "gap.mkv"])
def test_analysis_reads_audio_exactly(separator, clips, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(clips[name].read_bytes())
    analysis, _ = separator.analyze(path)
    reference = np.concatenate(list(media.iter_audio_blocks(path)), axis=1)
    record = analysis.meta["audio"]
    assert record["storage"] in ("decoded", "stored") and record["reason"]
    assert (analysis.folder / "audio.f32").exists() == (record["storage"] == "stored")
    if name in ("mp3.mkv", "pcm.mov", "gap.mkv"):
        assert record["storage"] == "decoded"
    assert analysis.num_channels == reference.shape[0] and analysis.num_samples == reference.shape[1]
    n = analysis.num_samples
    for a, b in [(0, 100), (n // 3, n // 3 + 70000), (n - 10, n)]:
        np.testing.assert_array_equal(analysis.read_audio(a, b), reference[:, a:b])


def test_gone_or_changed_clip_is_a_clear_error(separator, clips, tmp_path):
    path = tmp_path / "moving.mov"
    path.write_bytes(clips["pcm.mov"].read_bytes())
    analysis, _ = separator.analyze(path)
    assert analysis.meta["audio"]["storage"] == "decoded"
    with path.open("r+b") as handle:  # same size, other bytes
        handle.seek(-64, 2)
        handle.write(b"\0" * 64)
    with pytest.raises(MediaError, match="changed since it was analysed"):
        analysis.read_audio(0, 10)
    fresh, _ = separator.analyze(clips["pcm.mov"])
    moved = tmp_path / "moved.mov"
    moved.write_bytes(clips["pcm.mov"].read_bytes())
    again, _ = separator.analyze(moved)
    moved.unlink()
    with pytest.raises(MediaError, match="is gone"):
        again.read_audio(0, 10)
    assert fresh.read_audio(0, 10).shape == (2, 10)
