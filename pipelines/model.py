"""The digit CNN, shared by training and export (torch only; never imported by postread)."""

from __future__ import annotations

import torch
from torch import nn

ARCHITECTURE = "conv5x5(32)-pool-conv(64)x2-pool-conv(128)-pool-fc128-fc10, batch norm"


def _conv(in_channels: int, out_channels: int, kernel: int = 3) -> list[nn.Module]:
    # No conv bias: the batch norm right after it has its own.
    return [
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def _head(features: int, hidden: int, dropout: float) -> nn.Sequential:
    """Flattened features -> one hidden layer -> 10 logits."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(features, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, 10),
    )


class _ConvNet(nn.Module):
    """Convolutional ``features`` then a ``head`` (the layout both networks share)."""

    features: nn.Sequential
    head: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised N x 1 x 28 x 28 images -> N x 10 logits (uncalibrated)."""
        return self.head(self.features(x))


class DigitNet(_ConvNet):
    """A small CNN for 28x28 digits, sized so ONNX Runtime runs it > 5,000 digits/s on a core.

    Wider or deeper variants (two 3x3 convs at 28x28) scored no better on validation
    but ran at about 3,900 digits/s on one core, under the throughput target.
    """

    def __init__(self, dropout: float = 0.25):
        super().__init__()
        self.features = nn.Sequential(
            *_conv(1, 32, 5),
            nn.MaxPool2d(2),  # 14x14
            *_conv(32, 64),
            *_conv(64, 64),
            nn.MaxPool2d(2),  # 7x7
            *_conv(64, 128),
            nn.MaxPool2d(2),  # 3x3
        )
        self.head = _head(128 * 3 * 3, 128, dropout)


TEACHER_ARCHITECTURE = ("conv3x3(64)x2-pool-conv(128)x2-pool-conv(256)x2-pool-fc256-fc10, "
                        "batch norm")


class TeacherNet(_ConvNet):
    """A wider, deeper CNN that only teaches DigitNet (``train.py --teacher``); never shipped.

    Too slow for the reader's throughput target on a CPU core, which is why its knowledge
    reaches users through a distilled DigitNet rather than directly.
    """

    def __init__(self, dropout: float = 0.3):
        super().__init__()
        self.features = nn.Sequential(
            *_conv(1, 64), *_conv(64, 64),
            nn.MaxPool2d(2),  # 14x14
            *_conv(64, 128), *_conv(128, 128),
            nn.MaxPool2d(2),  # 7x7
            *_conv(128, 256), *_conv(256, 256),
            nn.MaxPool2d(2),  # 3x3
        )
        self.head = _head(256 * 3 * 3, 256, dropout)


PAIR_ARCHITECTURE = "conv3x3(16)-pool-conv(32)-pool-conv(64)-pool-fc64-fc1, batch norm"


class PairNet(nn.Module):
    """A tiny CNN that tells one digit from two touching digits cut out as one mark.

    The digit model, trained on single digits, often reads such a mark as one sure digit
    (an 89 as an 8); teaching it that pairs are no digit cost it accuracy on real digits
    (``train.py --pairs-share``). A separate judge leaves the digit model as it is: its
    answer is a cost in the reader's choice of cut (``segment_lattice.best_paths``).
    About an eighth of DigitNet's multiply-adds, but ONNX Runtime's cost per layer makes it
    a third more time per crop (1 thread, batch 1: 5,523 -> 4,179 crops/s with both).
    """

    def __init__(self, dropout: float = 0.2):
        super().__init__()
        self.features = nn.Sequential(
            *_conv(1, 16), nn.MaxPool2d(2),  # 14x14
            *_conv(16, 32), nn.MaxPool2d(2),  # 7x7
            *_conv(32, 64), nn.MaxPool2d(2),  # 3x3
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 3 * 3, 64), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised N x 1 x 28 x 28 images -> N logits that the crop holds two digits."""
        return self.head(self.features(x)).squeeze(1)


class DigitsAndPairs(nn.Module):
    """The shipped graph: a DigitNet and a PairNet side by side on the same crops."""

    def __init__(self, digits: nn.Module, pairs: nn.Module):
        super().__init__()
        self.digits, self.pairs = digits, pairs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised crops -> (N x 10 digit logits, N pair logits)."""
        return self.digits(x), self.pairs(x)


NETWORKS = {ARCHITECTURE: DigitNet, TEACHER_ARCHITECTURE: TeacherNet,
            PAIR_ARCHITECTURE: PairNet}
"""Each architecture's description (as checkpoints record it) -> its class."""


def load_network(checkpoint: dict, device: torch.device | str = "cpu") -> nn.Module:
    """The network a checkpoint describes, with its weights, on ``device``."""
    network = NETWORKS[checkpoint["architecture"]]()
    network.load_state_dict(checkpoint["state_dict"])
    return network.to(device)
