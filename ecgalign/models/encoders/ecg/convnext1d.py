"""ConvNeXt-V2 in 1-D (Woo et al., "ConvNeXt V2: Co-designing and scaling ConvNets with masked
autoencoders", CVPR 2023), the ECG backbone of ESI. A patchify stem (kernel 4, stride 4), four
stages separated by LayerNorm + stride-2 convolutions, and blocks of depthwise conv -> LayerNorm -> 4x MLP
with global response normalisation (GRN) in place of ConvNeXt-V1's layer scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from ecgalign.data.spec import InputSpec
from ecgalign.models.encoders.ecg.base import ECG_ENCODERS, ECGEncoder
from ecgalign.models.layers import DropPath, drop_path_rates


class ChannelsFirstLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, T) tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        return F.layer_norm(x.transpose(1, 2), self.normalized_shape, self.weight, self.bias,
                            self.eps).transpose(1, 2)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2 Sec. 3) on channels-last (B, T, C) features: aggregate
    each channel by its L2 norm over time, normalise by the mean over channels, recalibrate the input with
    it (plus a residual); gamma = beta = 0 starts as the identity."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.zeros(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        gx = torch.linalg.vector_norm(x, dim=1, keepdim=True)  # (B, 1, C)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + self.eps)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k=7) -> LN -> Linear 4x -> GELU -> GRN -> Linear -> drop path, residual."""

    def __init__(self, dim: int, drop_path: float = 0.0, kernel_size: int = 7):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        y = self.dwconv(x).transpose(1, 2)  # (B, T, C)
        y = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y)))))
        return x + self.drop_path(y.transpose(1, 2))


class ConvNeXt1D(ECGEncoder):
    """Tokens: the last stage's features (B, T / 32, dims[-1]); ``pool``: global average, then LayerNorm
    (ConvNeXt's head norm)."""

    def __init__(self, input_spec: InputSpec | None = None, depths: Sequence[int] = (3, 3, 9, 3),
                 dims: Sequence[int] = (96, 192, 384, 768), drop_path: float = 0.0, kernel_size: int = 7):
        super().__init__()
        input_spec = input_spec or InputSpec()
        if len(depths) != len(dims):
            raise ValueError(f"ConvNeXt1D: {len(depths)} stage depths but {len(dims)} stage widths")
        reduction = 4 * 2 ** (len(dims) - 1)
        if input_spec.samples < reduction:
            raise ValueError(f"ConvNeXt1D: {input_spec.samples} samples per lead are fewer than the "
                             f"network's total stride {reduction}")
        self.input_spec = input_spec
        self.embed_dim = dims[-1]
        rates = iter(drop_path_rates(drop_path, sum(depths)))
        self.downsample = nn.ModuleList([nn.Sequential(nn.Conv1d(input_spec.num_leads, dims[0], 4, stride=4),
                                                       ChannelsFirstLayerNorm(dims[0], eps=1e-6))])
        for cin, cout in pairwise(dims):
            self.downsample.append(nn.Sequential(ChannelsFirstLayerNorm(cin, eps=1e-6),
                                                 nn.Conv1d(cin, cout, 2, stride=2)))
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(dim, next(rates), kernel_size) for _ in range(depth)))
            for depth, dim in zip(depths, dims)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, T) -> (B, T / 32, D)
        self.check_input(x)
        for downsample, stage in zip(self.downsample, self.stages):
            x = stage(downsample(x))  # (B, C_i, T_i)
        return x.transpose(1, 2)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, D)
        return self.norm(tokens.mean(dim=1))


ECG_ENCODERS.variant("convnext1d_tiny", ConvNeXt1D, "ConvNeXt-V2-T widths: depths 3-3-9-3, dims 96-192-384-768.",
                     depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), drop_path=0.0)
ECG_ENCODERS.variant("convnext1d_base", ConvNeXt1D,
                     "ConvNeXt-V2-B widths: depths 3-3-27-3, dims 128-256-512-1024, drop path 0.1.",
                     depths=(3, 3, 27, 3), dims=(128, 256, 512, 1024), drop_path=0.1)
