"""Small building blocks shared by the STOP modules."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
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
    return torch.where(
        nonzero, (score - smin) / torch.where(nonzero, srange, torch.ones_like(srange)), torch.zeros_like(score)
    )


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


_DIRECT = False  # set by `direct_convolutions`


@contextlib.contextmanager
def direct_convolutions():
    """Within this context `FFTConv3d` and `same_conv3d` run the plain convolution (benchmarks compare the
    two; tests check they agree). Not thread-local: meant for a whole process."""
    global _DIRECT
    previous, _DIRECT = _DIRECT, True
    try:
        yield
    finally:
        _DIRECT = previous


def _fft_allowed(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.is_floating_point() and not _DIRECT and not _exporting()


class FFTConv3d(nn.Conv3d):
    """A 'same'-padded Conv3d computed by FFT (`fft_conv3d`) in eager mode on the CPU; the parameters are
    `nn.Conv3d`'s, and export, tracing and other devices use the plain convolution.

    The prompters' kernels are large (3x11x11 over frames, 3x15x25 over tokens x channels) and few-channel,
    where oneDNN's direct convolution costs ~363 multiply-adds per output and input channel, and its backward
    runs at a third of the CPU's rate with AVX2 kernels. By FFT, forward + backward of the spatial prompter's
    9->9 layer at T=8, 224x224 takes 0.19 s against 0.79 s (AVX2 kernels) and 0.15 s against 0.54 s
    (AVX-512); the temporal prompter's 9->1 layer 0.06 s against 3.4 s (`benchmarks/prompter_cpu.py`). The
    result equals the direct convolution to ~1e-6 relative in FP32; bf16/fp16 inputs are transformed in FP32.
    """

    def _fft_applies(self, x: torch.Tensor) -> bool:
        return (
            _fft_allowed(x)
            and _same(self.padding, self.kernel_size)
            and self.groups == 1
            and self.stride == (1, 1, 1)
            and self.dilation == (1, 1, 1)
            and self.padding_mode == "zeros"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._fft_applies(x):
            return super().forward(x)
        return fft_conv3d(x, self.weight, self.bias)


def _same(padding, kernel) -> bool:
    return isinstance(padding, tuple) and all(2 * p == k - 1 for p, k in zip(padding, kernel))


def same_conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.conv3d` with 'same' padding of an odd kernel, by FFT where `FFTConv3d` would use it."""
    if _fft_allowed(x):
        return fft_conv3d(x, weight, bias)
    return F.conv3d(x, weight, bias, padding=same_padding(tuple(weight.shape[2:])))


def _dft_matrix(n_out: int, n_in: int, length: int, like: torch.Tensor) -> torch.Tensor:
    """(n_out, n_in) complex of `like`'s dtype and device, exp(-2 pi i u j / length): the first n_out bins of a length-point DFT of
    n_in samples (the rest zero-padded)."""
    u = torch.arange(n_out, device=like.device, dtype=torch.float64)[:, None]
    j = torch.arange(n_in, device=like.device, dtype=torch.float64)[None]
    angle = (-2 * math.pi / length) * ((u * j) % length)
    return torch.polar(torch.ones_like(angle), angle).to(like.dtype)


def _kernel_spectrum(weight: torch.Tensor, p: int, q: int) -> torch.Tensor:
    """weight (O, C, kt, kh, kw) -> (p, q//2+1, kt, C, O): 2-D spectra of the spatially flipped kernels.

    Two small DFT matmuls over the kernel's kh x kw support, instead of FFTs of p x q zero-padded arrays."""
    o, c, kt, kh, kw = weight.shape
    half = q // 2 + 1
    taps = weight.flip((-2, -1)).permute(2, 1, 0, 3, 4).reshape(-1, kw)  # (kt*C*O*kh, kw)
    taps = taps.to(torch.promote_types(taps.dtype, torch.complex64))
    rows = (taps @ _dft_matrix(half, kw, q, taps).T).view(-1, kh, half)  # (kt*C*O, kh, half)
    cols = rows.permute(1, 2, 0).reshape(kh, -1)  # (kh, half*kt*C*O)
    return (_dft_matrix(p, kh, p, taps) @ cols).view(p, half, kt, c, o)


def fft_conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """'same'-padded 3-D cross-correlation with odd kernels and stride 1 (what `F.conv3d` computes): 2-D FFTs
    over (H, W), the time taps and channels as one small complex matmul per frequency.

    x (B, C, T, H, W), weight (O, C, kt, kh, kw), bias (O,) or None -> (B, O, T, H, W) in x's dtype; half
    types are transformed in FP32. Equal to the direct convolution to ~1e-6 relative in FP32; differentiable
    (autograd runs the same operations backwards). Transient memory: about (C + O) x B x (T + kt) complex
    spectra of (H + kh) x (W + kw) / 2 bins.
    """
    dtype = x.dtype
    if dtype in (torch.bfloat16, torch.float16):
        x = x.float()
    b, c, t, h, w = x.shape
    o, _, kt, kh, kw = weight.shape
    p, q = _fft_length(h + kh - 1), _fft_length(w + kw - 1)
    bins, span = p * (q // 2 + 1), t + kt - 1
    xf = torch.fft.rfft2(x, s=(p, q)).permute(3, 4, 0, 2, 1)  # (p, q', B, T, C)
    # each video padded in time on its own, the videos one after another: output row r = b * span + t reads
    # rows r .. r + kt - 1; the kt - 1 rows between two videos are computed and dropped
    xp = F.pad(xf, (0, 0, kt // 2, kt // 2)).reshape(bins, b * span, c)
    wf = _kernel_spectrum(weight.to(x.dtype), p, q).view(bins, kt, c, o)
    rows = b * span - (kt - 1)
    yf = torch.bmm(xp[:, :rows], wf[:, 0])
    for k in range(1, kt):  # the kernel's time taps (3 or 5 here), not frames
        yf = torch.baddbmm(yf, xp[:, k : k + rows], wf[:, k])
    yf = F.pad(yf, (0, 0, 0, kt - 1)).view(p, q // 2 + 1, b, span, o)[:, :, :, :t]  # (p, q', B, T, O)
    y = torch.fft.irfft2(yf.permute(2, 4, 3, 0, 1), s=(p, q))[..., kh // 2 : kh // 2 + h, kw // 2 : kw // 2 + w]
    y = y if bias is None else y + bias.to(y.dtype).view(1, -1, 1, 1, 1)
    return y.to(dtype)
