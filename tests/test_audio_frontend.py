import numpy as np
import pytest

from pixelsep_plugin.audio.stft import Stft, iter_stft_frames, source_stft_size
from pixelsep_plugin.audio.warp import log_bins_for_frequencies, unwarp, warp
from pixelsep_plugin.config import AudioFrontEndConfig

CFG = AudioFrontEndConfig()


@pytest.mark.parametrize("n_fft,hop", [(1022, 256), (4096, 1024), (2048, 512)])
@pytest.mark.parametrize("length", [1, 255, 1022, 44_101, 100_003])
def test_stft_round_trip(n_fft, hop, length):
    x = np.random.default_rng(length).standard_normal((2, length)).astype(np.float32)
    stft = Stft(n_fft, hop)
    spec = stft(x)
    assert spec.shape == (2, n_fft // 2 + 1, length // hop + 1)
    assert np.abs(stft.inverse(spec, length) - x).max() < 1e-6 * max(1.0, np.abs(x).max()) * 4


def test_stft_blocks_match_whole_signal():
    stft = Stft(4096, 1024)
    x = np.random.default_rng(0).standard_normal((6, 50_000)).astype(np.float32)
    whole = stft.inverse(stft(x) * 0.5, x.shape[-1])
    for a, b in [(0, 1000), (1000, 20_000), (45_000, 50_000)]:
        j0, j1 = stft.frames_touching(a, b, x.shape[-1])
        first, stop = stft.frame_span(j0, j1)
        piece = x[:, max(0, first) : min(x.shape[-1], stop)]
        spec = stft.frames(piece, j0, j1, offset=max(0, first), length=x.shape[-1])
        np.testing.assert_allclose(stft.overlap_add(spec * 0.5, j0, a, b, x.shape[-1]), whole[:, a:b], atol=1e-6)
    with pytest.raises(ValueError):
        stft.overlap_add(spec, j0 + 1, 45_000, 50_000, 50_000)


@pytest.mark.parametrize("block", [1, 333, 4096, 10**6])
def test_streaming_stft_equals_whole(block):
    stft = Stft(1022, 256)
    x = np.random.default_rng(1).standard_normal(30_001).astype(np.float32)
    if x.size // block > 5000:
        block = 7
    parts = list(iter_stft_frames(stft, (x[i : i + block] for i in range(0, x.size, block))))
    np.testing.assert_allclose(np.concatenate(parts, axis=-1), stft(x), atol=2e-4)


def test_stft_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal(20_000).astype(np.float32)
    ref = torch.stft(
        torch.from_numpy(x),
        1022,
        256,
        window=torch.hann_window(1022),
        center=True,
        pad_mode="constant",
        return_complex=True,
    ).numpy()
    np.testing.assert_allclose(Stft(1022, 256)(x), ref, atol=1e-3)


def test_source_stft_size():
    assert source_stft_size(11025) == (1024, 256)
    assert source_stft_size(22050) == (2048, 512)
    assert source_stft_size(44100) == (4096, 1024)
    assert source_stft_size(48000) == (4096, 1024)
    assert source_stft_size(8000) == (1024, 256)
    assert source_stft_size(48000, 2) == (4096, 2048) and source_stft_size(48000, 8) == (4096, 512)
    with pytest.raises(ValueError):
        source_stft_size(48000, 3)


def test_warp_round_trip_on_smooth_spectra():
    f = np.linspace(0, 1, CFG.linear_freq_bins)[:, None]
    smooth = np.sin(3 * f) + f**2 + 1
    back = unwarp(CFG)(warp(CFG)(smooth))
    assert np.abs(back - smooth).max() < 1e-3
    # the log grid is dense at low frequencies: a low partial survives warp and unwarp
    g = np.linspace(0, 1, CFG.log_freq_bins)[:, None]
    log_smooth = np.cos(5 * g)
    assert np.abs(warp(CFG)(unwarp(CFG)(log_smooth)) - log_smooth).max() < 0.05


def test_warp_is_monotonic_and_covers_the_band():
    w = warp(CFG)
    pos = w.lower + w.weight
    assert pos[0] == 0 and np.isclose(pos[-1], CFG.linear_freq_bins - 1)
    assert np.all(np.diff(pos) > 0)
    np.testing.assert_allclose(w.matrix().sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(w.matrix() @ np.arange(CFG.linear_freq_bins), pos, atol=1e-3)


def test_frequencies_map_onto_the_same_curve_as_unwarp():
    hz = np.arange(CFG.linear_freq_bins) * CFG.sample_rate / CFG.n_fft
    a, b = log_bins_for_frequencies(hz, CFG), unwarp(CFG)
    np.testing.assert_allclose(a.lower + a.weight, b.lower + b.weight, atol=1e-4)
