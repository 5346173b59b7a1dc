"""Torch twin of the numpy analysis front end (for training): waveform -> warped magnitude and log."""

from __future__ import annotations

import torch
from torch import nn

from pixelsep_plugin.audio.warp import warp
from pixelsep_plugin.config import AudioFrontEndConfig


class TorchFrontEnd(nn.Module):
    """waveform (N, samples) at cfg.sample_rate -> (magnitude (N, F_log, T), log magnitude (N, F_log, T)).

    Same framing, window and warp as ``log_magnitude(np.abs(Stft(n_fft, hop)(x)), cfg)``.
    """

    def __init__(self, cfg: AudioFrontEndConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.register_buffer("warp_matrix", torch.from_numpy(warp(cfg).matrix()), persistent=False)

    def linear_spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        """Complex STFT (N, n_fft // 2 + 1, T)."""
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
        magnitude = torch.matmul(self.warp_matrix, self.linear_spectrogram(waveform).abs())
        return magnitude, torch.log(magnitude + 1e-10)
