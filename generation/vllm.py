"""In-process vLLM (CUDA GPUs): ``LLM.chat`` over all prompts of a stage with ``SamplingParams``.

vLLM is imported inside :meth:`VLLMBackend.load` only, so the rest of the toolkit works (and its
tests run) on machines without it. Install it with ``pip install -r requirements-vllm.txt``.
"""
from __future__ import annotations

import logging
import time

from .base import BackendError, Chat, LLMBackend, ResultCallback, SamplingConfig, cut_repeated_lines

logger = logging.getLogger(__name__)


class VLLMBackend(LLMBackend):
    """Generate with ``vllm.LLM``.

    Args:
        model_name_or_path: ``default``, a local checkpoint folder or a hub id.
        tensor_parallel_size: GPUs to shard the model over.
        gpu_memory_utilization: fraction of GPU memory vLLM may claim.
        max_model_len: context length to allocate (``None``: the model's own).
        flush_every: prompts per ``LLM.chat`` call; results are handed to ``on_result`` (and so
            cached) after each call, which bounds what a crash can lose.
    """

    def __init__(
        self,
        model_name_or_path: str = "default",
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
        max_model_len: int | None = None,
        flush_every: int = 512,
    ) -> None:
        super().__init__()
        self.model_name_or_path = model_name_or_path
        self.tensor_parallel_size = tensor_parallel_size
        self.gpu_memory_utilization = gpu_memory_utilization
        self.max_model_len = max_model_len
        self.flush_every = max(1, int(flush_every))
        self.llm = None
        self.model_id = f"vllm:{model_name_or_path}"

    def load(self) -> None:
        if self.llm is not None:
            return
        try:
            from vllm import LLM
        except ImportError as exc:
            raise BackendError(
                "--model_type vllm needs vLLM, which is not installed here "
                f"({exc}). On a CUDA machine: pip install -r requirements-vllm.txt; "
                "without a GPU use --model_type hf, or --model_type api against a running server."
            ) from exc
        from utils.default_model import resolve_model_path

        path = resolve_model_path(self.model_name_or_path)
        logger.info("Loading %s with vLLM (tp=%d)", path, self.tensor_parallel_size)
        kwargs = dict(model=path, tensor_parallel_size=self.tensor_parallel_size,
                      gpu_memory_utilization=self.gpu_memory_utilization)
        if self.max_model_len:
            kwargs["max_model_len"] = self.max_model_len
        self.llm = LLM(**kwargs)

    def generate(
        self,
        chats: list[Chat],
        sampling: SamplingConfig,
        *,
        on_result: ResultCallback | None = None,
        desc: str = "generate",
    ) -> list[str]:
        if not chats:
            return []
        self.load()
        from vllm import SamplingParams

        params = SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
            max_tokens=sampling.max_new_tokens,
            seed=sampling.seed,
        )
        results: list[str] = []
        t0 = time.time()
        try:
            for start in range(0, len(chats), self.flush_every):
                part = chats[start : start + self.flush_every]
                outputs = self.llm.chat(part, params, use_tqdm=True)
                for j, out in enumerate(outputs):
                    text = cut_repeated_lines(out.outputs[0].text, sampling.stop_repeated_lines).strip()
                    results.append(text)
                    self.stats.prompt_tokens += len(out.prompt_token_ids or [])
                    self.stats.completion_tokens += len(out.outputs[0].token_ids)
                    self.stats.calls += 1
                    if on_result is not None:
                        on_result(start + j, text)
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"vllm generate failed on {self.model_id} ({desc}): {exc}") from exc
        finally:
            self.stats.seconds += time.time() - t0
        return results

    def close(self) -> None:
        self.llm = None
