"""Local transformers backend: batched generation with left padding and the chat template.

On a CPU it runs, by default, one worker process per core with one torch thread each, every worker
taking chunks of prompts. One process with several OpenMP threads is as fast only on an idle machine:
when another job holds a core, its threads wait for each other at every barrier (measured on the
2-core dev machine: 0.5 tok/s with 2 threads vs 13.8 with 1, the other core busy). Workers are started
once, on the first ``generate``, and kept until ``close()``. On a CPU replies are decoded with continuous
batching (:mod:`.hf_decode`); on a GPU generation stays in process, with ``model.generate``.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from tqdm.auto import tqdm

from utils.processes import die_with_parent

from .base import BackendError, Chat, LLMBackend, ResultCallback, SamplingConfig, cut_repeated_lines

logger = logging.getLogger(__name__)


class HFBackend(LLMBackend):
    """Generate with a local transformers model.

    Args:
        model_name_or_path: ``default``, a local checkpoint folder or a hub id.
        batch_size: rows decoded at once (prompts per ``model.generate`` call, or continuous-batching
            slots); prompts are sorted by length first so each batch pads little.
        dtype: ``auto`` (bf16 on GPUs and on CPUs with native bf16 instructions, see :func:`cpu_dtype`;
            else fp16 on GPUs, fp32 on CPUs), ``float32`` or ``bfloat16``.
        adapter_path: optional PEFT adapter folder applied on top of the model.
        merge_adapter: fold the adapter into the base weights after loading (in fp32, then cast to
            ``dtype``). Generation then costs what the base costs: an unmerged LoRA adds two small
            matmuls per targeted layer and token, which measured 3-4x slower on the 2-core CPU.
        model / tokenizer: an already loaded pair (tests, evaluation of in-memory models); always in process.
        show_progress: draw a tqdm bar per ``generate`` call.
        workers: CPU worker processes, each with one torch thread: ``auto`` = one per core (1 on a GPU, or
            for an in-memory model); ``1`` generates in this process with torch's own thread setting.
        decode: ``auto`` = continuous batching (:mod:`.hf_decode`: a finished reply leaves the batch and a
            waiting prompt takes its slot) on a CPU where the model supports it, else ``model.generate``;
            ``continuous`` or ``generate`` force one. With continuous batching each worker (or this process)
            takes chunks of up to :data:`CHUNK_BATCHES` batches of prompts and ``on_result`` fires as each
            reply ends (with ``model.generate``, per batch).
    """

    def __init__(
        self,
        model_name_or_path: str = "default",
        *,
        batch_size: int = 16,
        dtype: str = "auto",
        adapter_path: str | None = None,
        merge_adapter: bool = False,
        model=None,
        tokenizer=None,
        show_progress: bool = True,
        progress_desc: str = "generate",
        workers: int | str = "auto",
        decode: str = "auto",
    ) -> None:
        super().__init__()
        self.model_name_or_path = model_name_or_path
        self.batch_size = max(1, int(batch_size))
        self.dtype = dtype
        self.adapter_path = adapter_path
        self.merge_adapter = merge_adapter
        self.model, self.tokenizer = model, tokenizer
        self.show_progress = show_progress
        self.progress_desc = progress_desc
        self.model_id = f"hf:{model_name_or_path}" + (f"+{adapter_path}" if adapter_path else "")
        if decode not in DECODES:
            raise ValueError(f"decode must be one of {', '.join(DECODES)}, not {decode!r}")
        self.decode = decode
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._replies = None  # the workers' reply queue
        self._call = 0  # numbers generate() calls, so a reply left over from a failed call is ignored

    # -- loading ---------------------------------------------------------------------------------
    def _torch_dtype(self):
        import torch

        if self.dtype == "float32":
            return torch.float32
        if self.dtype == "bfloat16":
            return torch.bfloat16
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return cpu_dtype()

    def load(self) -> None:
        if self.model is not None and self.tokenizer is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from utils.default_model import resolve_model_path

        path = resolve_model_path(self.model_name_or_path)
        logger.info("Loading %s for generation", path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        dtype = self._torch_dtype()
        merge = bool(self.adapter_path and self.merge_adapter)
        # Merging in the low-precision dtype would round W + BA twice; merge in fp32, then cast.
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32 if merge else dtype)
        if self.adapter_path:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, self.adapter_path)
            if merge:
                self.model = self.model.merge_and_unload().to(dtype)
        if torch.cuda.is_available():
            self.model.to("cuda")
        self.model.eval()
        _left_pad(self.tokenizer)

    # -- generation ------------------------------------------------------------------------------
    def num_workers(self) -> int:
        """Worker processes ``generate`` uses (1: in this process)."""
        if self.model is not None and self._pool is None:
            return 1  # an in-memory model cannot be handed to other processes cheaply
        if self.workers != "auto":
            return max(1, int(self.workers))
        import torch

        return 1 if torch.cuda.is_available() else max(1, os.cpu_count() or 1)

    def _spec(self) -> dict:
        return dict(model_name_or_path=self.model_name_or_path, dtype=self.dtype, adapter_path=self.adapter_path,
                    merge_adapter=self.merge_adapter, decode=self.decode)

    def _continuous_planned(self) -> bool:
        """Whether chunks go to continuous batching (then a chunk holds several batches' prompts)."""
        if self.decode == "generate":
            return False
        if self.model is not None:
            return _continuous(self.model, self.decode)
        import torch

        return self.decode == "continuous" or not torch.cuda.is_available()

    def generate(
        self,
        chats: list[Chat],
        sampling: SamplingConfig,
        *,
        on_result: ResultCallback | None = None,
        desc: str | None = None,
    ) -> list[str]:
        if not chats:
            return []
        workers = self.num_workers()
        if workers == 1:
            self.load()
            tok = self.tokenizer
        else:
            tok = self._load_tokenizer()
        texts = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
        lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        # Longest first: similar lengths share a batch (little padding), and an out-of-memory error
        # shows up on the first batch instead of the last. With workers, chunks are cut so every
        # worker gets some.
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        slots = min(self.batch_size, math.ceil(len(texts) / workers))
        size = chunk_size(len(texts), workers, slots, self._continuous_planned())
        # (seed offset, items): seeded per chunk so a resumed run regenerates a chunk as the first run did
        chunks = [(sampling.seed + k, order[k: k + size]) for k in range(0, len(order), size)]
        results: list[str] = [""] * len(texts)
        reported = [False] * len(texts)
        t0 = time.time()
        bar = tqdm(total=len(texts), desc=desc or self.progress_desc, unit="prompt", disable=not self.show_progress)

        def emit(i: int, text: str) -> None:  # a reply, as soon as it is known (once)
            if not reported[i]:
                reported[i], results[i] = True, text
                if on_result is not None:
                    on_result(i, text)
                bar.update(1)

        def done(idx: list[int], outs: list[str], new_tokens: int) -> None:  # a whole chunk
            for i, text in zip(idx, outs):
                emit(i, text)
            self.stats.completion_tokens += new_tokens
            self.stats.prompt_tokens += sum(lengths[i] for i in idx)
            self.stats.calls += len(idx)

        try:
            if workers == 1:
                for seed, idx in chunks:
                    done(idx, *_generate_batch(self.model, tok, [texts[i] for i in idx], sampling, seed, slots,
                                               self.decode, on_reply=lambda j, text, idx=idx: emit(idx[j], text)))
            else:
                pool = self._start_pool(workers)
                self._call += 1
                pending = {pool.submit(_worker_generate, [texts[i] for i in idx], sampling, seed, slots,
                                       (self._call, k)): k for k, (seed, idx) in enumerate(chunks)}
                while pending:
                    finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for (call, k), j, text in self._streamed():
                        if call == self._call:
                            emit(chunks[k][1][j], text)
                    for fut in finished:
                        done(chunks[pending.pop(fut)][1], *fut.result())
        except RuntimeError as exc:  # OOM, a dead worker: surface with context, never an empty string
            raise BackendError(f"hf generate failed on {self.model_id} ({desc or self.progress_desc}): {exc}") from exc
        finally:
            bar.close()
            self.stats.seconds += time.time() - t0
        return results

    def _streamed(self) -> list:
        """The replies workers have reported so far (``(task, index in chunk, text)``), without waiting."""
        out = []
        while True:
            try:
                out.append(self._replies.get_nowait())
            except queue.Empty:
                return out

    def _load_tokenizer(self):
        if self.tokenizer is None:
            from transformers import AutoTokenizer

            from utils.default_model import resolve_model_path

            self.tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(self.model_name_or_path))
        _left_pad(self.tokenizer)
        return self.tokenizer

    def _start_pool(self, workers: int) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            logger.info("generating with %d worker processes x 1 thread (%s)", workers, self.model_id)
            # spawn, not fork: a forked child of a process whose OpenMP threads already ran can deadlock.
            spec = {**self._spec(), "parent_pid": os.getpid()}
            ctx = multiprocessing.get_context("spawn")
            # Workers report each reply here as it ends, so progress and on_result need not wait for a chunk.
            self._replies = ctx.Queue()
            self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                             initargs=(spec, self._replies))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._replies.close()
            self._replies = None
        self.model = None


DECODES = ("auto", "continuous", "generate")
# With continuous batching a worker runs a chunk of prompts through batch_size slots. Bigger chunks keep
# the slots full for longer (a batch drains only at a chunk's end); smaller ones balance the workers
# better and report results sooner.
CHUNK_BATCHES = 4


def chunk_size(n: int, workers: int, slots: int, continuous: bool) -> int:
    """Prompts per unit of work: one batch with ``generate``; with continuous batching up to
    ``CHUNK_BATCHES`` batches, sized so the workers get about the same number of chunks."""
    if not continuous or n <= workers * slots:
        return max(1, slots)
    per_worker = math.ceil(n / (workers * CHUNK_BATCHES * slots))
    return math.ceil(n / (workers * per_worker))


# CPU instruction-set flags (Linux /proc/cpuinfo names) that compute in bf16 natively.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16", "svebf16"})


def cpu_bf16_flags(cpuinfo: str | None = None) -> set[str]:
    """The native-bf16 flags this CPU reports (empty where /proc/cpuinfo is missing)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return set()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags & BF16_FLAGS


def cpu_dtype(cpuinfo: str | None = None):
    """``dtype=auto`` on a CPU: bf16 where the CPU computes it natively, else fp32.

    At batch 32 on one thread, bf16 generated about 2.5x faster than fp32 on a 2-core AMD EPYC with
    avx512_bf16, and 2.3x slower (31.7 vs 73.6 tok/s, benchmarks/bench_generate.py) on an Intel Xeon
    without a bf16 instruction, where every bf16 product goes through conversions to fp32.
    """
    import torch

    return torch.bfloat16 if cpu_bf16_flags(cpuinfo) else torch.float32


def _left_pad(tok) -> None:
    tok.padding_side = "left"  # decoder-only models must be left-padded for batched generation
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token


def _continuous(model, decode: str) -> bool:
    """Whether replies come from :func:`~.hf_decode.continuous_generate` (CPU) or ``model.generate``."""
    from .hf_decode import supports_continuous

    if decode == "generate":
        return False
    if decode == "continuous" or model.device.type == "cpu":
        return supports_continuous(model)
    return False  # on a GPU: model.generate; continuous batching at GPU scale is the vllm backend's job


def _generate_batch(model, tok, texts: list[str], sampling: SamplingConfig, seed: int, slots: int | None = None,
                    decode: str = "generate", on_reply=None) -> tuple[list[str], int]:
    """Greedy or sampled replies to ``texts`` (already chat-formatted), at most ``slots`` (default: all) in a
    batch at once; returns ``(replies, new tokens)``. ``on_reply(index, text)`` is called as each reply ends
    (with ``model.generate``: per batch)."""
    slots = slots or len(texts)
    if _continuous(model, decode):
        from .hf_decode import continuous_generate

        return continuous_generate(model, tok, texts, sampling, seed, slots, on_reply=on_reply)
    replies: list[str] = []
    tokens = 0
    for k in range(0, len(texts), slots):
        r, n = _generate_once(model, tok, texts[k: k + slots], sampling, seed + k)
        if on_reply is not None:
            for j, text in enumerate(r):
                on_reply(k + j, text)
        replies += r
        tokens += n
    return replies, tokens


def _generate_once(model, tok, texts: list[str], sampling: SamplingConfig, seed: int) -> tuple[list[str], int]:
    """``model.generate`` on one batch."""
    import torch

    gen_kwargs = dict(max_new_tokens=sampling.max_new_tokens, pad_token_id=tok.pad_token_id)
    if sampling.temperature > 0:
        gen_kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
    else:
        gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    enc = {k: v.to(model.device) for k, v in enc.items()}
    if sampling.stop_repeated_lines > 0:
        gen_kwargs["stopping_criteria"] = _loop_criteria(tok, sampling.stop_repeated_lines, enc["input_ids"].shape[1])
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(**enc, **gen_kwargs)
    new = out[:, enc["input_ids"].shape[1]:]
    replies = [cut_repeated_lines(tok.decode(row, skip_special_tokens=True), sampling.stop_repeated_lines).strip()
               for row in new]
    return replies, int((new != tok.pad_token_id).sum())


def _loop_criteria(tok, limit: int, prompt_len: int):
    """``sampling.stop_repeated_lines`` for ``model.generate``: a row stops once its reply loops."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    from .hf_decode import LoopStop

    looped = LoopStop(tok, limit)

    class _Loops(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.tensor([looped(row[prompt_len:].tolist()) for row in input_ids], device=input_ids.device)

    return StoppingCriteriaList([_Loops()])


_WORKER: dict = {}


def _worker_init(spec: dict, replies=None) -> None:
    """In a worker process: one torch thread, the model loaded once; exits when the parent process dies.
    ``replies``: the queue each reply goes to as it ends."""
    import torch

    die_with_parent(spec.pop("parent_pid", None))
    torch.set_num_threads(1)
    backend = HFBackend(**spec, workers=1, show_progress=False)
    backend.load()
    _left_pad(backend.tokenizer)
    _WORKER["backend"] = backend
    _WORKER["replies"] = replies


def _worker_generate(texts: list[str], sampling: SamplingConfig, seed: int, slots: int, task) -> tuple[list[str], int]:
    backend, replies = _WORKER["backend"], _WORKER.get("replies")
    on_reply = None if replies is None else (lambda j, text: replies.put((task, j, text)))
    return _generate_batch(backend.model, backend.tokenizer, texts, sampling, seed, slots, backend.decode, on_reply)
