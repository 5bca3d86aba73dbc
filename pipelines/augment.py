"""Batched digit augmentation that mimics handwriting on envelopes (torch, CPU-friendly).

Real envelope digits are not MNIST digits: they are slanted, squeezed, written with thin
fine-liners or thick markers, cut from blurry photos with JPEG noise, and not perfectly
centred by our segmenter. Every transform here works on a whole batch at once so that
augmentation costs little next to the forward and backward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812


@dataclass(frozen=True)
class AugmentConfig:
    """How strong each distortion is; defaults were chosen on the validation split."""

    rotation_deg: float = 10.0
    scale: tuple[float, float] = (0.88, 1.1)
    aspect: float = 0.1
    shear: float = 0.25
    shift_px: float = 2.0
    elastic_px: float = 0.8
    p_elastic: float = 0.5
    p_thicker: float = 0.2
    p_thinner: float = 0.1
    p_blur: float = 0.2
    p_noise: float = 0.2


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=gen.device) * (high - low) + low


def _affine_grid(n: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    angle = _uniform(n, -cfg.rotation_deg, cfg.rotation_deg, gen) * math.pi / 180
    scale = _uniform(n, *cfg.scale, gen)
    aspect = _uniform(n, -cfg.aspect, cfg.aspect, gen)
    shear = _uniform(n, -cfg.shear, cfg.shear, gen)
    # grid_sample coordinates span [-1, 1] over 28 pixels.
    shift = _uniform(2 * n, -cfg.shift_px, cfg.shift_px, gen).view(n, 2) * (2 / 28)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # The grid maps output to input, so dividing by the scale makes the digit bigger.
    sx, sy = 1 / (scale * (1 + aspect)), 1 / (scale * (1 - aspect))
    theta = torch.zeros(n, 2, 3, device=gen.device)
    theta[:, 0, 0] = sx * cos
    theta[:, 0, 1] = sx * (-sin + shear * cos)
    theta[:, 1, 0] = sy * sin
    theta[:, 1, 1] = sy * (cos + shear * sin)
    theta[:, :, 2] = shift
    return F.affine_grid(theta, [n, 1, 28, 28], align_corners=False)


def _elastic_offsets(n: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    # A coarse random field upsampled smoothly bends strokes without tearing them.
    coarse = torch.randn(n, 2, 4, 4, generator=gen, device=gen.device)
    field = F.interpolate(coarse, size=(28, 28), mode="bicubic", align_corners=False)
    active = torch.rand(n, generator=gen, device=gen.device) < cfg.p_elastic
    active = active.float().view(n, 1, 1, 1)
    return (field * active * cfg.elastic_px * (2 / 28)).permute(0, 2, 3, 1)


def _pick(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=gen, device=gen.device) < p).view(n, 1, 1, 1)


def augment(
    images: torch.Tensor, gen: torch.Generator, cfg: AugmentConfig = AugmentConfig()
) -> torch.Tensor:
    """Distort a batch of N x 1 x 28 x 28 images in [0, 1] (white on black).

    ``gen`` draws every random choice and must live on the images' device (CPU or CUDA).
    """
    n = images.shape[0]
    grid = _affine_grid(n, cfg, gen) + _elastic_offsets(n, cfg, gen)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    thicker = F.max_pool2d(out, 3, stride=1, padding=1)
    thinner = -F.max_pool2d(-out, 3, stride=1, padding=1)
    # Half-strength erosion: a full 3x3 erosion erases MNIST's 2-pixel strokes.
    out = torch.where(_pick(n, cfg.p_thicker, gen), thicker, out)
    out = torch.where(_pick(n, cfg.p_thinner, gen), (out + thinner) / 2, out)

    kernel = torch.tensor([1.0, 2.0, 1.0], device=images.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3)
    blurred = F.conv2d(out, kernel, padding=1)
    out = torch.where(_pick(n, cfg.p_blur, gen), blurred, out)

    sigma = _uniform(n, 0.02, 0.12, gen).view(n, 1, 1, 1)
    noisy = out + torch.randn(out.shape, generator=gen, device=gen.device) * sigma
    out = torch.where(_pick(n, cfg.p_noise, gen), noisy, out)
    return out.clamp_(0.0, 1.0)
