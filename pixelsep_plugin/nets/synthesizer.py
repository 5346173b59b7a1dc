"""The synthesizer: spectrogram-mask logits from a pixel's K-vector and the K audio components."""

from __future__ import annotations

import torch
from torch import nn


class Synthesizer(nn.Module):
    """logits (N, F, T) = sum_k alpha_k * v_k * s_k + beta; the mask is their sigmoid.

    Parameters: ``alpha`` (K,), initialised to 1, and ``beta`` (1,), initialised to 0. At inference
    the same formula runs in numpy with the values stored in the model package's manifest.
    """

    def __init__(self, num_components: int) -> None:
        super().__init__()
        if num_components <= 0:
            raise ValueError(f"num_components must be positive, got {num_components}")
        self.alpha = nn.Parameter(torch.ones(num_components))
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, pixel_features: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
        """pixel_features (N, K) (video features of the chosen pixel), components (N, K, F, T) -> logits (N, F, T)."""
        if pixel_features.ndim != 2 or components.ndim != 4 or components.shape[:2] != pixel_features.shape:
            raise ValueError(
                f"synthesizer expects (N, K) features and (N, K, F, T) components, got "
                f"{tuple(pixel_features.shape)} and {tuple(components.shape)}"
            )
        weights = pixel_features * self.alpha  # (N, K)
        return torch.einsum("nk,nkft->nft", weights, components) + self.beta
