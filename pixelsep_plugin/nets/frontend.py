"""Torch twin of the numpy analysis front end (for training): waveform -> warped magnitude and its log."""

from __future__ import annotations

import torch
from torch import nn

from pixelsep_plugin.audio.warp import warp
from pixelsep_plugin.config import AudioFrontEndConfig

LOG_EPS = 1e-10  # the same floor as pixelsep_plugin.audio.warp.log_magnitude


class TorchFrontEnd(nn.Module):
    """waveform (N, samples) at ``cfg.sample_rate`` -> (magnitude (N, F_log, T), log magnitude (N, F_log, T)).

    Framing, window and warp are those of the numpy front end, i.e. the log output equals
    ``log_magnitude(np.abs(Stft(n_fft, hop)(x)), cfg)`` up to float32 FFT round-off:
    ``torch.stft(center=True, pad_mode="constant")`` with a periodic Hann window of ``n_fft``
    samples, so ``T = samples // hop_length + 1`` columns; the linear magnitude (``n_fft // 2 + 1``
    bins, linear amplitude units) is mapped to ``F_log = cfg.log_freq_bins`` bins by the dense warp
    matrix (a buffer, not a weight); the log is ``log(magnitude + 1e-10)`` (natural log).
    """

    def __init__(self, cfg: AudioFrontEndConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.n_fft, periodic=True), persistent=False)
        self.register_buffer("warp_matrix", torch.from_numpy(warp(cfg).matrix()), persistent=False)

    def linear_spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        """waveform (N, samples) -> complex STFT (N, n_fft // 2 + 1, samples // hop_length + 1)."""
        return torch.stft(
            waveform,
            self.cfg.n_fft,
            self.cfg.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if waveform.ndim != 2:
            raise ValueError(f"TorchFrontEnd expects a (N, samples) waveform, got shape {tuple(waveform.shape)}")
        linear = self.linear_spectrogram(waveform.float()).abs()  # (N, F_lin, T)
        magnitude = torch.matmul(self.warp_matrix, linear)  # (F_log, F_lin) @ (N, F_lin, T) -> (N, F_log, T)
        return magnitude, torch.log(magnitude + LOG_EPS)
