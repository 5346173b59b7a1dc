"""The whole inference path on real clips through PyAV and ONNX Runtime (untrained `small` model)."""

from __future__ import annotations

import numpy as np
import pytest

from pixelsep_plugin import media
from pixelsep_plugin.api import write_stems
from pixelsep_plugin.errors import InputError
from pixelsep_plugin.runtime.query import Box, Point, Source

LAYOUTS = {"mono": 1, "stereo": 2, "5.1": 6}


@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000])
@pytest.mark.parametrize("layout", ["mono", "stereo", "5.1"])
def test_stems_plus_residual_is_the_original(separator, clip_factory, tmp_path, sample_rate, layout):
    clip = clip_factory(f"grid-{layout}-{sample_rate}.mkv", sample_rate=sample_rate, channel_layout=layout)
    analysis, _ = separator.analyze(clip)
    original, rate = media.read_audio(clip)
    assert rate == sample_rate and original.shape[0] == LAYOUTS[layout]
    sources = [Source("left", (Point(40, 60),)), Source("right", (Box(100, 30, 150, 90, 1.0),))]
    separation = separator.separate(analysis, sources)
    stems, residual = separation.render()
    assert stems.shape == (2,) + original.shape
    assert residual.shape == original.shape
    np.testing.assert_allclose(stems.sum(axis=0) + residual, original, atol=1e-4)
    assert np.abs(stems).max() > 1e-3  # the masks are not all zero
    files = write_stems(separation, tmp_path, clip.stem, "flac")
    for path in [*files.stems.values(), files.residual]:
        written, written_rate = media.read_audio(path)
        assert written_rate == sample_rate and written.shape == original.shape
    back = media.read_audio(files.stems["left"])[0]
    assert np.abs(back - stems[0]).max() < 1e-3  # 24-bit FLAC


def test_masks_are_mixture_consistent(separator, clip_factory):
    clip = clip_factory("consistent.mp4", seconds=8.0)
    analysis, _ = separator.analyze(clip)
    # three overlapping sources: their masks must never add up to more than 1
    sources = [Source(f"s{i}", (Point(20 + 50 * i, 60),)) for i in range(3)]
    separation = separator.separate(analysis, sources)
    masks = separation.analysis_masks(0, analysis.num_columns)
    assert masks.shape == (3, 256, analysis.num_columns)
    assert masks.min() >= 0 and masks.sum(axis=0).max() <= 1 + 1e-5
    orig = separation.source_masks(0, separation.stft.num_frames(separation.num_samples))
    assert orig.sum(axis=0).max() <= 1 + 1e-5
    # "residual" high band: nothing above 5.5 kHz in any stem
    high = separator.separate(analysis, sources, high_band="residual")
    hm = high.source_masks(0, 10)
    freqs = np.arange(hm.shape[1]) * analysis.sample_rate / high.stft.n_fft
    assert np.all(hm[:, freqs > 5600] == 0)
    assert np.all(orig[:, freqs > 5600].max(axis=1) > 0)


def test_long_clip_uses_several_windows(separator, clip_factory):
    clip = clip_factory("long.mp4", seconds=16.0)
    analysis, _ = separator.analyze(clip)
    assert analysis.plan.num_windows >= 3
    assert analysis.components.shape[0] == analysis.plan.num_windows
    assert analysis.features.shape[0] == pytest.approx(16, abs=1)
    stems, residual = separator.separate(analysis, [Source("a", (Point(30, 30, 12.0),))]).render()
    np.testing.assert_allclose(stems.sum(0) + residual, analysis.audio, atol=1e-4)


def test_queries_are_checked_against_the_clip(separator, clip_factory):
    analysis, _ = separator.analyze(clip_factory("plain.mp4"))
    with pytest.raises(InputError, match="outside the 160x120 frame"):
        separator.separate(analysis, [Source("x", (Point(160, 10),))])
    with pytest.raises(InputError, match="outside the clip"):
        separator.separate(analysis, [Source("x", (Point(10, 10, 99.0),))])
    with pytest.raises(InputError, match="no source"):
        separator.separate(analysis, [])


def test_second_run_hits_the_cache_and_a_corrupt_entry_is_rebuilt(small_model, clip_factory, tmp_path):
    from pixelsep_plugin.api import Separator

    sep = Separator(small_model, threads=2, cache_root=tmp_path)
    clip = clip_factory("cached.mp4", seconds=3.0)
    first, cached = sep.analyze(clip)
    assert not cached
    again, cached = sep.analyze(clip)
    assert cached and again.folder == first.folder
    expected = np.array(first.components)  # a copy: the entry's files are memory-mapped
    np.testing.assert_array_equal(np.asarray(again.components), expected)
    # corrupt one byte of the components: detected on the next run, analysed again
    path = first.folder / first.meta["arrays"]["components"]["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    from pixelsep_plugin.errors import CacheWarning

    with pytest.warns(CacheWarning, match=r"cached.mp4 is damaged \(components.* fails its checksum\): analysing it again"):
        rebuilt, cached = sep.analyze(clip)
    assert not cached
    np.testing.assert_array_equal(np.asarray(rebuilt.components), expected)
    # a truncated json is detected too
    (rebuilt.folder / "analysis.json").write_text("{")
    with pytest.warns(CacheWarning, match="analysis.json unreadable"):
        assert sep.analyze(clip)[1] is False
    # nothing but the entry (and the entry's lock file, which says who is analysing it) is left
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{rebuilt.folder.name}.lock", rebuilt.folder.name]


def test_cache_key_changes_with_the_model(small_model, clip_factory, tmp_path):
    import json
    import shutil

    from pixelsep_plugin.api import Separator

    other = tmp_path / "other-model"
    shutil.copytree(small_model, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["version"] = "other"
    (other / "manifest.json").write_text(json.dumps(manifest))
    clip = clip_factory("plain.mp4")
    a = Separator(small_model, cache_root=tmp_path / "cache").analyze(clip)[0]
    b, cached = Separator(other, cache_root=tmp_path / "cache").analyze(clip)
    assert not cached and a.folder != b.folder


def test_energy_map(separator, clip_factory):
    analysis, _ = separator.analyze(clip_factory("plain.mp4"))
    energy = separator.energy_map(analysis, 1.0)
    assert energy.shape == analysis.features.shape[2:]
    assert energy.max() - energy.min() > 1e-4  # the cells differ
    # a known answer: with every feature zero each cell's mask is sigmoid(beta) everywhere, so every
    # cell keeps exactly that share of the energy
    blank = type(analysis).open(analysis.folder, verify=False)
    blank.arrays["features"] = np.zeros_like(np.asarray(analysis.features))
    expected = 1.0 / (1.0 + np.exp(-separator.package.beta))
    np.testing.assert_allclose(separator.energy_map(blank, 1.0), expected, rtol=1e-5)
    with pytest.raises(InputError):
        separator.energy_map(analysis, 5.0)
