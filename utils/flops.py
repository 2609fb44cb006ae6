"""FLOP accounting and a matmul peak microbenchmark, shared by the budget estimator and benchmarks."""
from __future__ import annotations

import time
from pathlib import Path

# Dense bf16 tensor-core peaks from the vendors' datasheets (FLOP/s, no sparsity).
GPU_PEAK_FLOPS = {
    "A100": 312e12,
    "A800": 312e12,
    "H100": 989e12,   # SXM
    "H100-PCIE": 756e12,
    "H200": 989e12,
    "L40S": 362e12,
    "A10G": 125e12,
    "RTX4090": 165e12,
}


def training_flops_per_token(n_params: float, *, lora: bool = True, gradient_checkpointing: bool = False) -> float:
    """FLOPs to train on one token with a dense decoder of ``n_params`` parameters.

    Forward costs ~2N. Backward costs ~4N with full fine-tuning (grads w.r.t. activations *and* weights),
    but only ~2N with LoRA: the frozen weights need no weight gradient, only the activation gradient that
    flows through them (the adapters themselves are negligible). Gradient checkpointing re-runs the
    forward: +2N. Attention's sequence-length term is ignored (small for QA-length sequences).
    """
    backward = 2.0 if lora else 4.0
    recompute = 2.0 if gradient_checkpointing else 0.0
    return (2.0 + backward + recompute) * n_params


def measure_matmul_peak(dtype: str = "float32", size: int = 1024, seconds: float = 1.5, threads: int | None = None) -> float:
    """Achieved FLOP/s of a square matmul on this machine's CPU (or the current CUDA device)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    dt = getattr(torch, dtype)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(size, size, dtype=dt, device=device)
    b = torch.randn(size, size, dtype=dt, device=device)
    for _ in range(3):
        a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 * n / (time.perf_counter() - t0)


def load_average() -> str:
    """The 1/5/15-minute load averages, recorded beside benchmark figures (a busy machine skews them)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"
