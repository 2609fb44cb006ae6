"""Training precision: ``--bf16 auto`` picks bfloat16 where the hardware computes it natively, else fp32.

bf16 here means the base model's weights in bfloat16 and the Trainer's bf16 mixed precision (autocast)
around them, with the LoRA weights, their gradients and the optimizer state kept in fp32 (PEFT's
``autocast_adapter_dtype``): the saved adapter is fp32 either way. docs/finetuning.md gives the
measurements behind the choice.
"""
from __future__ import annotations

# x86 instructions that multiply bf16 natively (oneDNN uses them). Without one, torch emulates a bf16
# matmul through fp32 conversions and bf16 is slower than fp32 (benchmarks/README.md, bench_generate on an
# AVX-512 Xeon without them). Arm's bf16 is left out: training in bf16 was never measured on Arm.
CPU_TRAINING_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
_TRUE, _FALSE = ("true", "yes", "1", "bf16"), ("false", "no", "0", "fp32")


def parse_bf16(value) -> bool | None:
    """``--bf16`` as given: ``None`` for auto, else the forced bool. Accepts a bool (a YAML recipe's
    ``true``) or auto | True | False (also yes/no/1/0/bf16/fp32, any case).

    Raises ``ValueError`` naming the flag for anything else.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"--bf16 {value!r}: expected auto, True or False")


def choose_bf16(requested, *, cuda_available: bool, cuda_bf16: bool, cpuinfo: str | None, onednn_bf16: bool,
                deepspeed: bool = False) -> tuple[bool, str]:
    """``(train in bf16?, why)`` for ``--bf16 requested`` on a host described by the other arguments.

    ``cpuinfo`` is the text of /proc/cpuinfo (``None``: read this host's), ``onednn_bf16`` whether torch's
    oneDNN reports bf16 support. A forced value is returned as is; auto gives bf16 on a CUDA device that
    supports it, and on a CPU host only when the CPU has a native bf16 instruction *and* oneDNN can use it.
    DeepSpeed on a CPU host stays fp32 under auto: its bf16 mode casts every parameter, the LoRA weights
    included, to bf16 (fp32 copies in its optimizer), which is not the measured scheme.
    """
    from generation.hf import cpu_bf16_flags

    forced = parse_bf16(requested)
    if forced is not None:
        return forced, f"--bf16 {forced} (forced)"
    if cuda_available:
        if cuda_bf16:
            return True, "auto: the CUDA device supports bf16"
        return False, "auto: the CUDA device has no bf16 support"
    flags = sorted(cpu_bf16_flags(cpuinfo) & CPU_TRAINING_BF16_FLAGS)
    if not flags:
        return False, "auto: the CPU has no native bf16 instruction (amx_bf16, avx512_bf16); bf16 would be emulated"
    if not onednn_bf16:
        return False, f"auto: the CPU has {', '.join(flags)} but torch's oneDNN reports no bf16 support"
    if deepspeed:
        return False, "auto: DeepSpeed on a CPU host would cast the LoRA weights to bf16 too; fp32 unless forced"
    return True, f"auto: the CPU has {', '.join(flags)} and torch's oneDNN supports bf16"


def onednn_bf16_supported() -> bool:
    """Whether torch's oneDNN (mkldnn) backend is built in and reports bf16 support on this CPU."""
    import torch

    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private op: absent from some builds
        return False


def resolve_bf16(requested, *, deepspeed: bool = False) -> tuple[bool, str]:
    """:func:`choose_bf16` for this host."""
    import torch

    cuda = torch.cuda.is_available()
    return choose_bf16(requested, cuda_available=cuda, cuda_bf16=cuda and torch.cuda.is_bf16_supported(),
                       cpuinfo=None, onednn_bf16=not cuda and onednn_bf16_supported(), deepspeed=deepspeed)
