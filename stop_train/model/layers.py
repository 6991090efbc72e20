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
    """A 'same'-padded Conv3d with a single input or output channel and a large kernel, computed by FFT in
    eager mode on the CPU (`fft_conv3d`).

    oneDNN runs such a direct 3D convolution far below the CPU's rate, and its backward worse: for the
    temporal prompter's 1->9 layer (3x15x25 kernel over T=8, 49 tokens, 768 channels) forward 0.41 s with
    AVX2 kernels against 0.07 s by FFT, forward + backward 1.2 s (AVX-512) / 1.6 s (AVX2) against 0.1 s
    (`benchmarks/prompter_cpu.py`); the 9->1 layers gain alike. The FFT gives the same result to ~1e-6
    relative (bf16/fp16 inputs are transformed in FP32). Export, tracing and other devices use the plain
    convolution; the parameters are those of `nn.Conv3d`.
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
        return fft_conv3d(x, self.weight, self.bias)


def fft_conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """'same'-padded 3-D cross-correlation with odd kernels and stride 1 (what `F.conv3d` computes), by FFT.

    x (B, C, T, H, W), weight (O, C, kt, kh, kw), bias (O,) or None -> (B, O, T, H, W) in x's dtype; half
    types are transformed in FP32. Equal to the direct convolution to ~1e-6 relative in FP32. Input channels
    are mixed into the output spectra one at a time, so the transient memory is O spectra, not O x C.
    """
    dtype = x.dtype
    if dtype in (torch.bfloat16, torch.float16):
        x = x.float()
    weight = weight.to(x.dtype)
    dims, kernel = (2, 3, 4), weight.shape[2:]
    size = tuple(_fft_length(n + k - 1) for n, k in zip(x.shape[2:], kernel))
    xf = torch.fft.rfftn(x, s=size, dim=dims)  # (B, C, ...)
    wf = torch.fft.rfftn(weight.flip(dims), s=size, dim=dims)  # (O, C, ...): correlation = flipped convolution
    yf = xf[:, 0].unsqueeze(1) * wf[:, 0]  # (B, O, ...)
    for c in range(1, x.shape[1]):  # channels, not frames or batch: C <= 16 here
        yf = yf + xf[:, c].unsqueeze(1) * wf[:, c]
    y = torch.fft.irfftn(yf, s=size, dim=dims)  # (B, O, ...)
    crop = tuple(slice((k - 1) // 2, (k - 1) // 2 + n) for k, n in zip(kernel, x.shape[2:]))
    y = y[(slice(None), slice(None)) + crop]
    y = y if bias is None else y + bias.to(y.dtype).view(1, -1, 1, 1, 1)
    return y.to(dtype)
