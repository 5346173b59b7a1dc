"""The synthesizer: mask logits from a K-vector and the K audio components."""

from __future__ import annotations

import torch
from torch import nn


class Synthesizer(nn.Module):
    """logits (N, F, T) = sum_k alpha_k * v_k * s_k + beta; the mask is their sigmoid."""

    def __init__(self, num_components: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(num_components))
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, pixel_features: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
        """pixel_features (N, K), components (N, K, F, T) -> logits (N, F, T)."""
        weights = pixel_features * self.alpha
        return torch.einsum("nk,nkft->nft", weights, components) + self.beta
