"""Mixed precision for training: whether to autocast, to which dtype, and the loss scaler.

On CUDA ``amp`` autocasts to ``amp_dtype`` (bfloat16 where the GPU has it, else float16); on a CPU
``cpu_bf16`` autocasts to bfloat16 only where the CPU computes it natively, the only case where it is faster.
Loss scaling is for float16 alone: bfloat16 has float32's exponent range.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seglab.engine.config import TrainConfig


@dataclass
class MixedPrecision:
    """What a training step autocasts to (``enabled``, ``dtype``) and its gradient scaler."""

    enabled: bool
    dtype: torch.dtype
    scaler: torch.amp.GradScaler


def amp_dtype(name: str) -> torch.dtype:
    """The autocast dtype on CUDA: bfloat16 where the GPU has it (Ampere and newer), else float16."""
    if name == "bfloat16" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return getattr(torch, name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): only then is CPU autocast faster."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def mixed_precision(config: TrainConfig, device: torch.device) -> MixedPrecision:
    """The mixed precision ``config`` asks for, as far as ``device`` supports it."""
    cuda_amp = config.amp and device.type == "cuda"
    enabled = cuda_amp or (config.cpu_bf16 and device.type == "cpu" and cpu_has_native_bf16())
    dtype = amp_dtype(config.amp_dtype) if cuda_amp else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=enabled and dtype == torch.float16)
    return MixedPrecision(enabled, dtype, scaler)
