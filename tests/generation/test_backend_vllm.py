"""The vllm backend: a clear error where vLLM is missing; a real run only on a CUDA machine with vLLM."""
import importlib.util

import pytest

from generation import BackendError, build_backend
from generation.base import SamplingConfig
from tests.conftest import requires_gpu

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here; this checks the message shown without it")
def test_missing_vllm_is_a_clear_error():
    backend = build_backend("vllm", model_name_or_path="default")
    with pytest.raises(BackendError, match="requirements-vllm.txt"):
        backend.generate([[{"role": "user", "content": "hi"}]], SamplingConfig())


def test_importing_the_module_does_not_import_vllm():
    import sys

    import generation.vllm  # noqa: F401

    assert HAS_VLLM or "vllm" not in sys.modules


@requires_gpu
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (pip install -r requirements-vllm.txt)")
def test_vllm_generates_in_order(default_model_dir):
    backend = build_backend("vllm", model_name_or_path=str(default_model_dir), gpu_memory_utilization=0.3)
    seen = {}
    out = backend.generate([[{"role": "user", "content": f"Say {i}"}] for i in range(3)],
                           SamplingConfig(temperature=0.0, max_new_tokens=8), on_result=seen.__setitem__)
    assert len(out) == 3 and [seen[i] for i in range(3)] == out and all(out)
