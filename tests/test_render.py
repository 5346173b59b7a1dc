"""Rendering recipes: the remix's identity and gains, peaks never clipped silently, every format, the limiter."""

from __future__ import annotations

import numpy as np
import pytest

from pixelsep_plugin import media
from pixelsep_plugin import recipe as rcp
from pixelsep_plugin.api import render_recipe
from pixelsep_plugin.audio.limiter import PeakLimiter, running_mean, running_min
from pixelsep_plugin.runtime.query import Box, Point, Source

SOURCES = [Source("red", (Point(30, 60, 1.0),)), Source("blue", (Box(120, 30, 160, 90, 0.5),))]


@pytest.fixture(scope="module")
def edit(separator, clip_factory):
    clip = clip_factory("render.mp4", seconds=2.0, sample_rate=44100, channel_layout="stereo")
    analysis, _ = separator.analyze(clip)
    recipe = rcp.new_recipe(rcp.clip_ref(clip), separator.package.model_id, separator.package.checksum, SOURCES)
    return separator, analysis, recipe


def test_a_recipe_at_0_db_renders_the_original_bit_for_bit(edit, tmp_path):
    separator, analysis, recipe = edit
    result = render_recipe(separator, analysis, recipe, tmp_path)
    remix, rate = media.read_audio(result.remix)
    original, original_rate = media.read_audio(recipe.clip.path)
    assert rate == original_rate == 44100 and remix.dtype == np.float32
    assert np.array_equal(remix, original)
    stems = [media.read_audio(result.stems[name])[0] for name in ("red", "blue")]
    residual = media.read_audio(result.residual)[0]
    np.testing.assert_allclose(stems[0] + stems[1] + residual, original, atol=2e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "render.blue.wav", "render.red.wav", "render.remix.wav", "render.residual.wav",
    ]  # fmt: skip
    assert result.warnings == []


@pytest.mark.parametrize(
    "gains, mutes, solos",
    [
        ({"red": 6.0, "residual": -12.0}, {}, {}),
        ({"blue": -6.0}, {"red": True}, {}),
        ({"red": 3.0}, {}, {"blue": True}),
        ({}, {"residual": True}, {"red": True, "blue": True}),
    ],
)
def test_the_remix_applies_gains_mutes_and_solos(edit, tmp_path, gains, mutes, solos):
    separator, analysis, recipe = edit
    recipe = rcp.apply_gains(recipe, list(gains.items()))
    for name, value in mutes.items():
        (recipe.residual if name == "residual" else recipe.source(name)).mute = value
    for name, value in solos.items():
        recipe.source(name).solo = value
    result = render_recipe(separator, analysis, recipe, tmp_path, peaks="warn")
    remix = media.read_audio(result.remix)[0]
    stems = {name: media.read_audio(path)[0] for name, path in result.stems.items()}
    residual = media.read_audio(result.residual)[0]
    soloing = any(solos.values())
    expected = np.zeros_like(remix)
    for name, stem in stems.items():
        if not mutes.get(name) and (not soloing or solos.get(name)):
            expected += 10 ** (gains.get(name, 0.0) / 20) * stem
    if not mutes.get("residual") and not soloing:
        expected += 10 ** (gains.get("residual", 0.0) / 20) * residual
    np.testing.assert_allclose(remix, expected, atol=1e-5)


def test_peaks_are_limited_or_announced_never_clipped_silently(edit, tmp_path):
    separator, analysis, recipe = edit
    loud = rcp.apply_gains(recipe, [("red", 24.0), ("blue", 24.0), ("residual", 24.0)])
    # float WAV keeps the peak and says so
    result = render_recipe(separator, analysis, loud, tmp_path / "wav", stems=False)
    remix = media.read_audio(result.remix)[0]
    assert np.abs(remix).max() > 1.0 and result.remix_peak == pytest.approx(np.abs(remix).max(), rel=1e-6)
    assert len(result.warnings) == 1 and "float WAV keeps it" in result.warnings[0] and "dBFS" in result.warnings[0]
    # FLAC would clip: the limiter brings the remix under -0.1 dBFS and says by how much
    result = render_recipe(separator, analysis, loud, tmp_path / "flac", stems=False, audio_format="flac")
    remix = media.read_audio(result.remix)[0]
    assert np.abs(remix).max() <= 10 ** (-0.1 / 20) + 2**-22
    assert result.reduction_db > 10 and "limited to -0.1 dBFS" in result.warnings[0]
    # asked not to limit, FLAC clips and the warning counts the samples
    result = render_recipe(separator, analysis, loud, tmp_path / "warn", stems=False, audio_format="flac", peaks="warn")
    assert "samples are clipped in flac" in result.warnings[0]
    assert int(result.warnings[0].split(": ")[1].split()[0]) > 0


@pytest.mark.parametrize(
    "audio_format, suffix, rate",
    [("flac", ".flac", 44100), ("mp3", ".mp3", 44100), ("opus", ".opus", 48000), ("aac", ".m4a", 44100)],
)
def test_every_audio_format(edit, tmp_path, audio_format, suffix, rate):
    separator, analysis, recipe = edit
    result = render_recipe(separator, analysis, recipe, tmp_path, audio_format=audio_format)
    assert result.remix.name == f"render.remix{suffix}"
    for path in [*result.stems.values(), result.residual, result.remix]:
        info = media.probe(path)
        assert info.sample_rate == rate and info.channel_layout == "stereo"
        assert info.duration_seconds == pytest.approx(2.0, abs=0.1)
    remix, _ = media.read_audio(result.remix)
    original, _ = media.read_audio(recipe.clip.path)
    if audio_format == "flac":
        np.testing.assert_allclose(remix, original, atol=2**-23)
    elif audio_format != "opus":  # lossy at the clip's rate: the same sound, near enough
        n = min(remix.shape[1], original.shape[1])
        lag = int(np.argmax(np.correlate(remix[0, 2000:6000], original[0, 2000:6000], "full"))) - 3999
        assert abs(lag) <= 1 and np.corrcoef(remix[0, :n], original[0, :n])[0, 1] > 0.95


def _limit(signal: np.ndarray, block_sizes: list[int], ceiling: float) -> tuple[np.ndarray, PeakLimiter]:
    limiter = PeakLimiter(44100, signal.shape[0], ceiling)
    out, start, i = [], 0, 0
    while start < signal.shape[1]:
        size = block_sizes[i % len(block_sizes)]
        out.append(limiter.process(signal[:, start : start + size]))
        start, i = start + size, i + 1
    out.append(limiter.finish())
    return np.concatenate(out, axis=1), limiter


def test_the_limiter_holds_its_ceiling_at_any_block_size_and_leaves_quiet_audio_alone():
    rng = np.random.default_rng(1)
    t = np.arange(3 * 44100) / 44100
    signal = np.stack([0.5 * np.sin(2 * np.pi * 220 * t), 0.4 * np.sin(2 * np.pi * 330 * t)]).astype(np.float32)
    signal[:, 44100:46000] *= 4.0  # a burst at 1 s, 6 dB over full scale
    signal[:, 90000:90003] = rng.uniform(1.5, 3.0, (2, 3))  # clicks at 2.04 s
    ceiling = 10 ** (-1 / 20)
    reference, limiter = _limit(signal, [len(t)], ceiling)
    assert reference.shape == signal.shape
    assert np.abs(reference).max() <= ceiling * (1 + 1e-6)
    assert limiter.gain_reduction_db() > 6
    assert np.array_equal(reference[:, :40000], signal[:, :40000])  # far from any peak: untouched, bit for bit
    assert np.array_equal(reference[:, 60000:85000], signal[:, 60000:85000])
    for sizes in ([1], [77, 4096, 1000], [100_000]):
        if sizes == [1]:
            out, _ = _limit(signal[:, :5000], sizes, ceiling)
            np.testing.assert_array_equal(out, _limit(signal[:, :5000], [5000], ceiling)[0])
            continue
        out, _ = _limit(signal, sizes, ceiling)
        np.testing.assert_array_equal(out, reference)
    short, _ = _limit(signal[:, :10], [3], ceiling)  # shorter than the look-ahead
    np.testing.assert_array_equal(short, signal[:, :10])


def test_running_minimum_and_mean_known_answers():
    values = np.random.default_rng(2).random(1001).astype(np.float32)
    for width in (1, 2, 7, 64, 1001):
        windows = np.lib.stride_tricks.sliding_window_view(values, width)
        np.testing.assert_array_equal(running_min(values, width), windows.min(axis=1))
        np.testing.assert_allclose(running_mean(values, width), windows.astype(np.float64).mean(axis=1), rtol=1e-12)
    assert running_min(values[:3], 5).size == 0
