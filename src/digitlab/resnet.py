"""The standard ResNet-18 and ResNet-34 (He et al. 2015, torchvision's layout), written here, and
fastai's head for them: what "Going Deeper" trains, from scratch.

    body = resnet18(n_in=1).body       # stem + four stages: (N, 512, H/32, W/32)
    model = with_head(body, 512, n_out=2)

On 28x28 digits the stem (7x7 conv, stride 2, then a 3x3 max-pool, stride 2) leaves 7x7, and the
stages 7 -> 4 -> 2 -> 1: the architecture the book (through fastai) runs on MNIST_SAMPLE.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import DigitlabError


class BasicBlock(nn.Module):
    """relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)); the shortcut is a strided 1x1 conv when the
    shape changes (torchvision's "option B")."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        result: torch.Tensor = self.relu(out + self.downsample(x))
        return result


class ResNet(nn.Module):
    """stem -> four stages of BasicBlocks (64, 128, 256, 512 channels) -> average pool -> linear.

    `.body` is everything before the pool (what a learner puts its own head on)."""

    def __init__(self, blocks: tuple[int, int, int, int], n_in: int = 3, n_out: int = 1000) -> None:
        super().__init__()
        stem = [
            nn.Conv2d(n_in, 64, 7, stride=2, padding=3, bias=False),  # (N, 64, H/2, W/2)
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),  # (N, 64, H/4, W/4)
        ]
        stages: list[nn.Module] = []
        c_in = 64
        for i, (n, c_out) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
            stride = 1 if i == 0 else 2  # each later stage halves the size
            stages.append(
                nn.Sequential(
                    *(BasicBlock(c_in if j == 0 else c_out, c_out, stride if j == 0 else 1) for j in range(n))
                )
            )
            c_in = c_out
        self.body = nn.Sequential(*stem, *stages)  # (N, 512, H/32, W/32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, n_out)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(self.pool(self.body(x)).flatten(1))
        return out


def _no_pretrained(pretrained: bool | None, name: str) -> None:
    if pretrained:
        raise DigitlabError(
            f"{name}(pretrained=True) wants ImageNet's weights, which digitlab does not download (they were "
            "learned on colour photos, not digits): pass pretrained=False; a digit model trains from scratch "
            "in a few minutes"
        )


def resnet18(pretrained: bool | None = False, n_in: int = 3, n_out: int = 1000) -> ResNet:
    """ResNet-18 (2, 2, 2, 2 blocks; 11.2M parameters with 1000 outputs), freshly initialised."""
    _no_pretrained(pretrained, "resnet18")
    return ResNet((2, 2, 2, 2), n_in=n_in, n_out=n_out)


def resnet34(pretrained: bool | None = False, n_in: int = 3, n_out: int = 1000) -> ResNet:
    """ResNet-34 (3, 4, 6, 3 blocks; 21.3M parameters with 1000 outputs), freshly initialised."""
    _no_pretrained(pretrained, "resnet34")
    return ResNet((3, 4, 6, 3), n_in=n_in, n_out=n_out)


class AdaptiveConcatPool2d(nn.Module):
    """Average and max pool side by side: (N, C, H, W) -> (N, 2C, 1, 1) (fastai's, as its head uses)."""

    def __init__(self) -> None:
        super().__init__()
        self.avg, self.max = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.max(x), self.avg(x)], 1)


def head(n_features: int, n_out: int, hidden: int = 512, dropout: float = 0.5) -> nn.Sequential:
    """fastai's `create_head`: concat pool, batchnorm, dropout/2, linear to `hidden`, ReLU,
    batchnorm, dropout, linear to `n_out`."""
    return nn.Sequential(
        AdaptiveConcatPool2d(),
        nn.Flatten(),  # (N, 2 * n_features)
        nn.BatchNorm1d(2 * n_features),
        nn.Dropout(dropout / 2),
        nn.Linear(2 * n_features, hidden, bias=False),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(hidden),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_out, bias=False),
    )


def with_head(body: nn.Module, n_features: int, n_out: int) -> nn.Sequential:
    """body then fastai's head: `model[0]` is the body, `model[1]` the head (what freeze() splits on)."""
    return nn.Sequential(body, head(n_features, n_out))
