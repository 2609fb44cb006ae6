"""LLM backends behind one protocol (:class:`LLMBackend`), shared by collection, replay and evaluation;
:func:`build_backend` picks one by name."""
from __future__ import annotations

import inspect

from .base import BackendError, BackendStats, Chat, LLMBackend, SamplingConfig

BACKENDS = ("hf", "vllm", "api")


def build_backend(model_type: str, **kwargs) -> LLMBackend:
    """Return an (unloaded) backend; the only place that branches on the backend's name.

    Args:
        model_type: ``hf`` (transformers, CPU or GPU), ``vllm`` (CUDA) or ``api`` (any
            OpenAI-compatible server).
        **kwargs: constructor arguments. Settings meant for another backend (e.g. ``api_base``
            for ``hf``) are ignored, so one config can build any backend; an argument that no
            backend takes is an error.
    Raises:
        ValueError: for an unknown ``model_type`` or argument.
    """
    if model_type == "hf":
        from .hf import HFBackend as cls
    elif model_type == "vllm":
        from .vllm import VLLMBackend as cls
    elif model_type == "api":
        from .api import APIBackend as cls
    else:
        raise ValueError(f"unknown model_type {model_type!r}; choose one of {', '.join(BACKENDS)}")
    known = set(inspect.signature(cls).parameters)
    unknown = set(kwargs) - known - _OTHER_BACKENDS_ARGS
    if unknown:
        raise ValueError(f"{model_type} backend: unknown arguments {sorted(unknown)}")
    return cls(**{k: v for k, v in kwargs.items() if k in known})


# Arguments some backend takes; passing them to another one is harmless.
_OTHER_BACKENDS_ARGS = {
    "model_name_or_path", "batch_size", "dtype", "adapter_path", "tensor_parallel_size", "gpu_memory_utilization",
    "max_model_len", "api_base", "api_model", "api_key_env", "max_concurrency", "requests_per_minute",
    "max_retries", "timeout", "show_progress", "workers",
}


__all__ = ["BACKENDS", "BackendError", "BackendStats", "Chat", "LLMBackend", "SamplingConfig", "build_backend"]
