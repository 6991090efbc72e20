"""Small building blocks shared by the STOP modules."""
from __future__ import annotations

import os

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


# Backward of the spatial prompter's convolutions: "direct" (oneDNN's Conv3d backward), "taps" (2-D
# convolutions, `_taps_grads`) or "auto" (taps where ATen dispatches below AVX-512). STOP_CONV_BACKWARD overrides.
CONV_BACKWARD = os.environ.get("STOP_CONV_BACKWARD", "auto")


def _taps_backward_pays() -> bool:
    if CONV_BACKWARD != "auto":
        return CONV_BACKWARD == "taps"
    return torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AVX512_BF16", "AMX")


class TapsConv3d(nn.Conv3d):
    """A 'same'-padded Conv3d whose backward may run as 2-D convolutions (`_TapsBackward`); the forward and
    the parameters are `nn.Conv3d`'s.

    With AVX2 kernels oneDNN's Conv3d backward runs at a third of the CPU's rate for the spatial prompter's
    3x11x11 layers (1.16 s for 9->9 over T=8 at 224x224) while the same gradients as 2-D convolutions over all
    frames, the kernel's time taps as input channels, take half that (0.61 s); with AVX-512 kernels the
    direct backward is faster (`benchmarks/prompter_cpu.py`), so the choice is made per ISA at run time
    (`CONV_BACKWARD`). The gradients agree to summation order (~3e-5 relative for the weights).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = (
            torch.is_grad_enabled() and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and not _exporting() and self.groups == 1
            and self.stride == (1, 1, 1) and self.dilation == (1, 1, 1) and self.padding_mode == "zeros"
            and isinstance(self.padding, tuple)
            and all(2 * p == k - 1 for p, k in zip(self.padding, self.kernel_size)) and _taps_backward_pays()
        )
        if not taps:
            return super().forward(x)
        return _TapsBackward.apply(x, self.weight, self.bias, self.padding)


class _TapsBackward(torch.autograd.Function):
    """`F.conv3d` forward; backward by `_taps_grads`."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv3d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        gx, gw = _taps_grads(x, weight, gy, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        gb = gy.sum(dim=(0, 2, 3, 4)) if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


def time_taps(x: torch.Tensor, kt: int) -> torch.Tensor:
    """x (B, C, T, H, W) -> (B*T, C*kt, H, W): each frame with the kt frames a 'same' time kernel reads around
    it (zeros past the ends), as input channels; a 3-D convolution is then a 2-D one over these frames."""
    b, c, t, h, w = x.shape
    taps = F.pad(x, (0, 0, 0, 0, kt // 2, kt // 2)).unfold(2, kt, 1)  # (B, C, T, H, W, kt)
    return taps.permute(0, 2, 1, 5, 3, 4).reshape(b * t, c * kt, h, w)


def _taps_grads(x: torch.Tensor, weight: torch.Tensor, gy: torch.Tensor, need_x: bool, need_w: bool):
    """Gradients of a 'same' Conv3d, x (B, C, T, H, W), weight (O, C, kt, kh, kw), gy (B, O, T, H, W), as 2-D
    convolutions over the B*T frames whose C*kt input channels are each channel's time taps -> (gx, gw)."""
    b, c, t, h, w = x.shape
    o, _, kt, kh, kw = weight.shape
    frames = time_taps(x, kt)
    g2 = gy.transpose(1, 2).reshape(b * t, o, h, w)
    w2, pad = weight.reshape(o, c * kt, kh, kw), (kh // 2, kw // 2)
    gw = torch.nn.grad.conv2d_weight(frames, w2.shape, g2, padding=pad).reshape(weight.shape) if need_w else None
    gx = None
    if need_x:
        gf = torch.nn.grad.conv2d_input(frames.shape, w2, g2, padding=pad).reshape(b, t, c, kt, h, w)
        padded = x.new_zeros(b, c, t + kt - 1, h, w)
        for k in range(kt):  # time taps (kt = 3), not frames: tap k of output frame s read padded frame s + k
            padded[:, :, k:k + t] += gf[:, :, :, k].transpose(1, 2)
        gx = padded[:, :, kt // 2:kt // 2 + t]
    return gx, gw
