"""A smaller analysis entry: components and log-magnitude as uint8 with affine scales, the audio
decoded again from the clip, analysis.num_channels, heatmaps through the read functions."""

from __future__ import annotations

import numpy as np
import pytest

from pixelsep_plugin import media
from pixelsep_plugin.runtime.heatmap import energy_map
from pixelsep_plugin.runtime.store import dequantize_u8, quantize_u8


def test_quantize_error_is_half_a_step():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 4, 16, 8)).astype(np.float32) * rng.uniform(0.1, 20, size=(3, 4, 1, 1))
    values[1, 2] = 0.75  # a constant slice
    codes, scales = quantize_u8(values, (2, 3))
    assert codes.dtype == np.uint8 and codes.shape == values.shape
    assert scales.dtype == np.float32 and scales.shape == (3, 4, 2)
    back = dequantize_u8(codes, scales)
    step = scales[..., 1][..., None, None]
    assert np.all(np.abs(back - values) <= step / 2 + 1e-5 * np.abs(values).max())
    np.testing.assert_array_equal(back[1, 2], values[1, 2])
    assert codes.min() == 0 and codes.max() == 255
    row_codes, row_scales = quantize_u8(values[0], (2,))  # per (component, row)
    assert row_scales.shape == (4, 16, 2)
    assert np.abs(dequantize_u8(row_codes, row_scales) - values[0]).max() <= np.abs(back[0] - values[0]).max() + 1e-6


def test_entry_is_small_and_reads_back(separator, clip_factory):
    clip = clip_factory("small-entry.mov", seconds=6.0, audio_codec="pcm_s16le")
    analysis, _ = separator.analyze(clip)
    meta = analysis.meta
    assert meta["format_version"] == 2
    assert meta["audio"]["storage"] == "decoded" and "audio" not in meta["arrays"]
    assert not (analysis.folder / "audio.f32").exists()
    windows = analysis.plan.num_windows
    k, f, t = meta["arrays"]["components"]["shape"][1:]
    assert meta["arrays"]["components"]["dtype"] == "|u1"
    assert (analysis.folder / "components.u8").stat().st_size == windows * k * f * t
    assert meta["arrays"]["component_scales"]["shape"] == [windows, k, 2]
    assert meta["arrays"]["log_magnitude"]["dtype"] == "|u1"
    comps = analysis.read_components(windows - 1)
    assert comps.dtype == np.float32 and comps.shape == (k, f, t)
    np.testing.assert_array_equal(analysis.components[windows - 1], comps)
    logmag = analysis.read_log_magnitude(0)
    assert logmag.shape == (f, t) and np.isfinite(logmag).all()
    assert analysis.num_channels == 2
    original, _ = media.read_audio(clip)
    np.testing.assert_array_equal(analysis.audio, original)
    energy = energy_map(analysis, separator.package, 1.0)
    assert energy.dtype == np.float32 and 0 <= energy.min() and energy.max() <= 1


def test_scales_describe_each_window_and_component(separator, clip_factory):
    """Each (window, component) slice has its own offset (its minimum) and step (its range / 255)."""
    clip = clip_factory("mask-check.mp4", seconds=4.0)
    analysis, _ = separator.analyze(clip)
    scales = np.asarray(analysis.arrays["component_scales"])
    comps = analysis.components
    span = comps.max(axis=(2, 3)) - comps.min(axis=(2, 3))
    # the step is the slice's range / 255 and it reproduces the slice's extremes
    np.testing.assert_allclose(scales[..., 1] * 255, span, rtol=1e-4, atol=1e-6)
    assert np.all(np.abs(comps.min(axis=(2, 3)) - scales[..., 0]) <= 1e-6 * np.abs(scales[..., 0]).max() + 1e-7)


def test_stored_audio_still_reads_exactly(separator, clip_factory, monkeypatch):
    from pixelsep_plugin.runtime import analysis as analysis_module

    monkeypatch.setattr(analysis_module, "SEEK_PROBES", ())
    monkeypatch.setattr(
        analysis_module.AudioSpanReader, "seeks_exactly", lambda self, blocks: False
    )  # as for a codec that does not decode exactly after a seek
    clip = clip_factory("stored.mp4", seconds=2.5)
    analysis, _ = separator.analyze(clip)
    assert analysis.meta["audio"]["storage"] == "stored" and analysis.audio_stored
    assert "after a seek" in analysis.meta["audio"]["reason"]
    original, _ = media.read_audio(clip)
    np.testing.assert_array_equal(analysis.read_audio(1000, 50000), original[:, 1000:50000])


def test_audio_without_usable_pts_is_stored(separator, clip_factory, monkeypatch):
    from dataclasses import replace

    from pixelsep_plugin.media.span import AudioScan
    from pixelsep_plugin.runtime import analysis as analysis_module

    real = analysis_module.scan_audio

    def without_pts(path, block_samples):  # as for a stream whose frames carry no pts
        for item in real(path, block_samples):
            yield replace(item, pts_consistent=False) if isinstance(item, AudioScan) else item

    monkeypatch.setattr(analysis_module, "scan_audio", without_pts)
    clip = clip_factory("no-pts.mkv", seconds=2.0)
    analysis, _ = separator.analyze(clip)
    assert analysis.meta["audio"]["storage"] == "stored" and "pts" in analysis.meta["audio"]["reason"]
    original, _ = media.read_audio(clip)
    np.testing.assert_array_equal(analysis.read_audio(0, original.shape[1]), original)


def test_decode_policy_keeps_no_audio_even_without_exact_seeks(separator, clip_factory, monkeypatch):
    from pixelsep_plugin.errors import InputError
    from pixelsep_plugin.runtime import analysis as analysis_module

    monkeypatch.setattr(analysis_module.AudioSpanReader, "seeks_exactly", lambda self, blocks: False)
    monkeypatch.setenv(analysis_module.AUDIO_POLICY_ENV, "decode")
    clip = clip_factory("decode-policy.mkv", seconds=3.0)
    analysis, _ = separator.analyze(clip)
    record = analysis.meta["audio"]
    assert record["storage"] == "decoded" and record["seeks_exact"] is False
    assert not (analysis.folder / "audio.f32").exists()
    original, _ = media.read_audio(clip)
    n = original.shape[1]
    for a, b in [(n // 2, n // 2 + 5000), (100, 200), (n - 50, n)]:
        np.testing.assert_array_equal(analysis.read_audio(a, b), original[:, a:b])
    reader = analysis._span_reader()
    assert reader.seeks == 2  # a read that goes back decodes from the start; one further on continues
    monkeypatch.setenv(analysis_module.AUDIO_POLICY_ENV, "sometimes")
    with pytest.raises(InputError, match="PIXELSEP_CACHE_AUDIO"):
        separator.analyze(clip)
