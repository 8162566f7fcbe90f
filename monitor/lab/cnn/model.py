"""Inflated (I3D-style) 3D ResNets for face clips (needs the ``train`` extra: PyTorch).

The layout follows the 2D ResNets of He et al. with every k×k convolution inflated to t×k×k (Carreira &
Zisserman 2017): the stem is 3×7×7 with stride (1, 2, 2), blocks use 3×3×3 (basic) or 3×1×1 → 1×3×3 → 1×1×1
(bottleneck) kernels, and stages 2–4 halve time, height and width. Parameter names match the 2D ResNets
of torchvision, so :func:`inflate_2d` can start a model from ImageNet 2D weights: each 2D kernel is
repeated along time and divided by its length, which makes the 3D model answer a clip of one repeated
image exactly as the 2D model answers the image (the property the tests check).

Input: float32 (batch, 3, frames, size, size), RGB normalised with MEAN/STD. Output: logits (batch, 2)
for the model's task — ``diagnosis`` (0 control, 1 MG) or ``severity`` (0 QMG 0–9, 1 QMG > 9).
"""

from __future__ import annotations

import torch
from torch import nn

from monitor.lab.cnn.archs import ARCHS

MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)


def _bn(ch: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(ch)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, ch: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(cin, ch, 3, stride, 1, bias=False)
        self.bn1 = _bn(ch)
        self.conv2 = nn.Conv3d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = _bn(ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, ch: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(cin, ch, (3, 1, 1), 1, (1, 0, 0), bias=False)
        self.bn1 = _bn(ch)
        self.conv2 = nn.Conv3d(ch, ch, (1, 3, 3), (stride, stride, stride), (0, 1, 1), bias=False)
        self.bn2 = _bn(ch)
        self.conv3 = nn.Conv3d(ch, ch * 4, 1, bias=False)
        self.bn3 = _bn(ch * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet3D(nn.Module):
    def __init__(self, arch: str = "r3d18", classes: int = 2, dropout: float = 0.5) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
        kind, layers = ARCHS[arch]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.arch = arch
        self.conv1 = nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False)
        self.bn1 = _bn(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        self._cin = 64
        self.layer1 = self._stage(block, 64, layers[0], 1)
        self.layer2 = self._stage(block, 128, layers[1], 2)
        self.layer3 = self._stage(block, 256, layers[2], 2)
        self.layer4 = self._stage(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512 * block.expansion, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, block, ch: int, n: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self._cin != ch * block.expansion:
            down = nn.Sequential(nn.Conv3d(self._cin, ch * block.expansion, 1, stride, bias=False),
                                 _bn(ch * block.expansion))
        blocks = [block(self._cin, ch, stride, down)]
        self._cin = ch * block.expansion
        blocks += [block(self._cin, ch) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


def build_model(arch: str) -> ResNet3D:
    return ResNet3D(arch)


def inflate_2d(model: ResNet3D, state_2d: dict) -> list[str]:
    """Load a torchvision-style 2D ResNet state dict into ``model``, inflating each kernel along time.

    Returns the names of the model's parameters the 2D weights did not provide (the head, usually).
    Raises ValueError when a tensor's shape cannot be inflated to the model's.
    """
    own = model.state_dict()
    loaded = {}
    for name, w3 in own.items():
        if name not in state_2d or name.startswith("fc."):
            continue
        w2 = state_2d[name]
        if w3.dim() == 5:
            if w2.dim() != 4 or w2.shape[:2] != w3.shape[:2] or w2.shape[2:] != w3.shape[3:]:
                raise ValueError(f"{name}: 2D weight {tuple(w2.shape)} does not inflate to {tuple(w3.shape)}")
            t = w3.shape[2]
            loaded[name] = w2.unsqueeze(2).repeat(1, 1, t, 1, 1) / t
        else:
            if w2.shape != w3.shape:
                raise ValueError(f"{name}: 2D tensor {tuple(w2.shape)} does not match {tuple(w3.shape)}")
            loaded[name] = w2
    missing = [n for n in own if n not in loaded]
    model.load_state_dict({**own, **loaded})
    return missing
