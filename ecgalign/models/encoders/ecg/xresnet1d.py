"""xresnet1d (Strodthoff et al., "Deep learning for ECG analysis: benchmarks and insights from PTB-XL",
IEEE JBHI 2021): fastai's xresnet, i.e. ResNet with the "bag of tricks" changes of He et al.
(CVPR 2019: three-conv stem, stride on the middle conv, average-pool shortcut), in 1-D with kernel 5.

Stages are 64-128-256-512 wide (x4 bottleneck expansion = 2048 output channels), the fastai xresnet
widths. The PTB-XL benchmark code keeps every stage 64 wide (256 outputs); ``widths=(64, 64, 64, 64)``
builds that. Each block's last BatchNorm starts at zero (Goyal et al. 2017), so a block starts as its
shortcut.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from ecgalign.data.spec import InputSpec
from ecgalign.models.encoders.ecg.base import ECG_ENCODERS, ECGEncoder

EXPANSION = 4  # bottleneck blocks: output channels = 4 x stage width


def conv_bn(cin: int, cout: int, kernel_size: int, stride: int = 1, relu: bool = True,
            zero_gamma: bool = False) -> nn.Sequential:
    """Conv1d (no bias, "same" padding, Kaiming-normal) -> BatchNorm (gamma 1 or 0, beta 0) [-> ReLU]."""
    conv = nn.Conv1d(cin, cout, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, bias=False)
    nn.init.kaiming_normal_(conv.weight)
    bn = nn.BatchNorm1d(cout)
    nn.init.constant_(bn.weight, 0.0 if zero_gamma else 1.0)
    nn.init.zeros_(bn.bias)
    return nn.Sequential(conv, bn, nn.ReLU(inplace=True)) if relu else nn.Sequential(conv, bn)


class Bottleneck(nn.Module):
    """1x1 -> k (strided) -> 1x1 convs; shortcut = AvgPool (stride > 1) then 1x1 conv-BN (width change)."""

    def __init__(self, cin: int, width: int, stride: int, kernel_size: int):
        super().__init__()
        cout = width * EXPANSION
        self.convs = nn.Sequential(
            conv_bn(cin, width, 1),
            conv_bn(width, width, kernel_size, stride),
            conv_bn(width, cout, 1, relu=False, zero_gamma=True),
        )
        shortcut: list[nn.Module] = []
        if stride != 1:
            shortcut.append(nn.AvgPool1d(stride, ceil_mode=True))
        if cin != cout:
            shortcut.append(conv_bn(cin, cout, 1, relu=False))
        self.shortcut = nn.Sequential(*shortcut)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T) -> (B, C_out, T / stride)
        return self.act(self.convs(x) + self.shortcut(x))


class XResNet1D(ECGEncoder):
    """Tokens: the last stage's features (B, ~T / 32, 4 * widths[-1]). ``pool`` is global average pooling
    only, so ``embed_dim`` = 4 * widths[-1]; fastai's head concatenates average and max pooling (2x wider)."""

    def __init__(self, input_spec: InputSpec | None = None, layers: Sequence[int] = (3, 4, 6, 3),
                 widths: Sequence[int] = (64, 128, 256, 512), stem_channels: Sequence[int] = (32, 32, 64),
                 kernel_size: int = 5, stem_kernel_size: int = 5):
        super().__init__()
        input_spec = input_spec or InputSpec()
        if len(layers) != len(widths):
            raise ValueError(f"XResNet1D: {len(layers)} stage depths but {len(widths)} stage widths")
        if kernel_size % 2 == 0 or stem_kernel_size % 2 == 0:
            raise ValueError("XResNet1D: kernel sizes must be odd ('same' padding)")
        self.input_spec = input_spec
        self.embed_dim = widths[-1] * EXPANSION
        channels = [input_spec.num_leads, *stem_channels]
        self.stem = nn.Sequential(
            *(conv_bn(cin, cout, stem_kernel_size, stride=2 if i == 0 else 1)
              for i, (cin, cout) in enumerate(pairwise(channels))),
            nn.MaxPool1d(3, stride=2, padding=1),
        )
        stages = []
        cin = channels[-1]
        for i, (depth, width) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(Bottleneck(cin, width, stride, kernel_size))
                cin = width * EXPANSION
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, T) -> (B, N, 4 * widths[-1])
        self.check_input(x)
        return self.stages(self.stem(x)).transpose(1, 2)


ECG_ENCODERS.variant("xresnet1d_50", XResNet1D, "Bottleneck stages of 3-4-6-3 blocks.", layers=(3, 4, 6, 3))
ECG_ENCODERS.variant("xresnet1d_101", XResNet1D,
                     "Bottleneck stages of 3-4-23-3 blocks (the PTB-XL benchmark's xresnet1d101).", layers=(3, 4, 23, 3))
