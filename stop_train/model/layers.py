"""Small building blocks shared by the STOP modules."""
from __future__ import annotations

import torch
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def same_padding(kernel: tuple[int, ...]) -> tuple[int, ...]:
    """Padding that keeps every size of an odd kernel's input."""
    return tuple((k - 1) // 2 for k in kernel)


class Adapter(nn.Sequential):
    """Parallel bottleneck adapter on the raw residual stream (the published code calls it 'LoRA')."""

    def __init__(self, width: int, hidden: int):
        super().__init__(nn.Linear(width, hidden), nn.PReLU(), nn.Linear(hidden, width))


def min_max_per_video(score: torch.Tensor) -> torch.Tensor:
    """Min-max normalise (B, T) over T for each video; a constant row gives zeros (no division by zero)."""
    smin = score.amin(dim=-1, keepdim=True)
    srange = score.amax(dim=-1, keepdim=True) - smin
    nonzero = srange > 0
    return torch.where(nonzero, (score - smin) / torch.where(nonzero, srange, torch.ones_like(srange)), torch.zeros_like(score))


def _fft_length(n: int) -> int:
    """The smallest 2-3-5-smooth length >= n (fast FFT sizes)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _exporting() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


class FFTConv3d(nn.Conv3d):
    """A 'same'-padded Conv3d with few output channels, computed by FFT in eager mode on the CPU.

    oneDNN runs a direct 3D convolution with a single output channel and a large kernel at ~30 GFLOP/s
    here (the published InterConv's 9->1 layer takes ~0.2 s for T=8); the FFT gives the same result to
    ~1e-6 relative in a tenth of the time (bf16/fp16 inputs are transformed in FP32). Export, tracing and
    other devices use the plain convolution.
    """

    def _fft_applies(self, x: torch.Tensor) -> bool:
        same = all(2 * p == k - 1 for p, k in zip(self.padding, self.kernel_size)) if isinstance(self.padding, tuple) else False
        return (
            x.device.type == "cpu" and x.is_floating_point() and not _exporting()
            and same and self.groups == 1 and self.stride == (1, 1, 1) and self.dilation == (1, 1, 1)
            and self.padding_mode == "zeros"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._fft_applies(x):
            return super().forward(x)
        dtype = x.dtype
        if dtype in (torch.bfloat16, torch.float16):  # half types: the FFT runs in FP32 (more exact, too)
            x = x.float()
        weight = self.weight.to(x.dtype)
        dims = (2, 3, 4)
        kernel = weight.shape[2:]
        size = tuple(_fft_length(n + k - 1) for n, k in zip(x.shape[2:], kernel))
        xf = torch.fft.rfftn(x, s=size, dim=dims)  # (B, C, ...)
        wf = torch.fft.rfftn(weight.flip(dims), s=size, dim=dims)  # (O, C, ...): correlation = flipped conv
        y = torch.fft.irfftn((xf.unsqueeze(1) * wf).sum(2), s=size, dim=dims)  # (B, O, ...)
        crop = tuple(slice(k - 1 - p, k - 1 - p + n) for k, p, n in zip(kernel, self.padding, x.shape[2:]))
        y = y[(slice(None), slice(None)) + crop]
        y = y if self.bias is None else y + self.bias.to(y.dtype).view(1, -1, 1, 1, 1)
        return y.to(dtype)
