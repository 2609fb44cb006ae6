"""Text replay: the base model's own plain-text samples, mixed into fine-tuning as ``{"text": ...}`` rows.

The chat replay (replay/build.py) keeps the model's answers to general prompts; nothing in it keeps what the
model expects of ordinary prose, and the general-text NLL (evaluation/general_text.py) of the text rows rises
after the default recipe's update. Here the base model continues short generic openers
(examples/text_replay_openers.txt) without the chat template, sampled at temperature 1: training with NLL on
samples of the base model's own distribution minimises a sampled KL(base || updated) on ordinary text, a
self-synthesized rehearsal that needs no external corpus. finetuning/data.py tokenises the rows without a
template and trains every token.

finetune.py makes them (:func:`ensure_text_replay`, when ``--text_replay_openers`` names a file) and mixes
them into its training data; ``python -m replay --kind text`` makes them on their own. They are cached like
the chat replay (keyed by the model's weights, the openers, the length cap and the sampling settings), and
the default model's samples of the shipped openers are bundled (examples/text_replay.jsonl, made by
``python -m replay --kind text --bundle True``), so a fresh machine does not generate them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

from replay.build import bundled_key, cached_rows, read_prompts, replay_key
from utils.default_model import DEFAULT_MODEL_ALIAS, resolve_model_path
from utils.io_utils import atomic_write_text, is_current, mark_current
from utils.recipe import REPO_ROOT

logger = logging.getLogger(__name__)
BUNDLED = REPO_ROOT / "examples" / "text_replay.jsonl"
#: temperature 1 and a wide nucleus: the rows should follow the model's distribution, not its mode
#: (greedy continuations of prose loop, and would teach the update one path per opener)
SAMPLING = {"temperature": 1.0, "top_p": 0.95, "seed": 0}
#: a sample that adds fewer words than this to its opener is dropped (it stopped at once, or said nothing)
MIN_NEW_WORDS = 12
#: a sample in which a line or sentence of at least this many words recurs is dropped (a loop)
MIN_REPEAT_WORDS = 3
#: a sample with any of these words is dropped: at temperature 1 a 135M model sometimes writes crude nonsense,
#: which the shipped bundle must not hold and an update should not rehearse (a few innocent samples go too)
UNFIT_WORDS = frozenset({"cum", "fuck", "fucking", "naked", "nude", "orgasm", "penis", "porn", "porno",
                         "pornography", "rape", "raped", "sex", "sexual", "sexy", "shit", "vagina"})
#: what, besides the model, the inputs and the length cap, the rows depend on (part of both cache keys)
SETTINGS = {"kind": "text", "sampling": SAMPLING, "min_new_words": MIN_NEW_WORDS, "min_repeat_words": MIN_REPEAT_WORDS,
            "unfit_words": sorted(UNFIT_WORDS)}

Sampler = Callable[[list[str], int], list[str]]  # (openers, max new tokens) -> continuations


def degenerate(continuation: str, min_new_words: int = MIN_NEW_WORDS) -> str | None:
    """Why a sampled continuation is not worth training on, or ``None`` when it is.

    Too short (fewer than ``min_new_words`` words), unfit (a word of :data:`UNFIT_WORDS`), or looping: a line
    or sentence of at least :data:`MIN_REPEAT_WORDS` words that occurs twice (case and spacing ignored).
    """
    if len(continuation.split()) < min_new_words:
        return "short"
    if UNFIT_WORDS & set(re.findall(r"[a-z]+", continuation.lower())):
        return "unfit"
    seen: set[str] = set()
    for piece in re.split(r"\n+|(?<=[.!?])\s+", continuation):
        key = " ".join(piece.lower().split())
        if len(key.split()) < MIN_REPEAT_WORDS:
            continue
        if key in seen:
            return "repeated"
        seen.add(key)
    return None


def text_rows(openers: list[str], continuations: list[str]) -> tuple[list[dict], dict[str, int]]:
    """``(rows, dropped counts by reason)``: ``{"id", "text": opener + continuation, "source"}`` per kept sample,
    in the openers' order. The sample is kept as it was cut (no sentence trimming): with no end token
    after it, a text cut mid-sentence teaches nothing about where texts end."""
    rows, dropped = [], {}
    for opener, continuation in zip(openers, continuations):
        reason = degenerate(continuation)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        text = (opener + continuation).rstrip()
        rid = hashlib.sha256(f"text\n{text}".encode()).hexdigest()[:16]
        rows.append({"id": f"text-{rid}", "text": text, "source": "text_replay"})
    return rows, dropped


def text_key(model_name_or_path: str, openers: list[str], max_new_tokens: int) -> dict:
    """Everything the rows depend on: the chat replay's key (weights, inputs, length cap) and how they are sampled."""
    return {**replay_key(model_name_or_path, openers, max_new_tokens), **SETTINGS}


def text_bundled_key(model_name_or_path: str | None, openers: list[str], max_new_tokens: int) -> dict | None:
    """:func:`text_key` for the shipped samples of the default model (machine-independent); ``None`` for
    any other model."""
    key = bundled_key(model_name_or_path, openers, max_new_tokens)
    return None if key is None else {**key, **SETTINGS}


def hf_sampler(model_name_or_path: str, batch_size: int = 16) -> Sampler:
    """Continuations by transformers' ``generate`` in this process (left-padded batches, seeded once).

    In process, not through generation.hf's workers: that backend wraps every prompt in the chat template,
    and the continuations must keep their leading space, which its replies (stripped) lose.
    """
    def sample(openers: list[str], max_new_tokens: int) -> list[str]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_path(model_name_or_path)
        tok = AutoTokenizer.from_pretrained(path)
        tok.padding_side = "left"  # decoder-only: new tokens must follow every opener directly
        tok.pad_token = tok.pad_token or tok.eos_token
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device).eval()
        # Plain text may end with the pretraining separator as well as with the chat end-of-turn.
        stops = sorted({t for t in (tok.eos_token_id, tok.convert_tokens_to_ids("<|endoftext|>"))
                        if isinstance(t, int) and t != tok.unk_token_id})
        torch.manual_seed(SAMPLING["seed"])
        out = []
        for k in range(0, len(openers), batch_size):
            enc = tok(openers[k: k + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(device)
            with torch.inference_mode():
                # top_k=0: no top-k cut (transformers' default is 50), only the nucleus
                ids = model.generate(**enc, do_sample=True, temperature=SAMPLING["temperature"],
                                     top_p=SAMPLING["top_p"], top_k=0, max_new_tokens=max_new_tokens,
                                     pad_token_id=tok.pad_token_id, eos_token_id=stops)
            new = ids[:, enc["input_ids"].shape[1]:]
            out += [tok.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False) for row in new]
            logger.info("text replay: %d of %d openers continued", len(out), len(openers))
        return out

    return sample


def build_text_replay(model_name_or_path: str, openers_path: str | Path, output: str | Path, *,
                      max_new_tokens: int = 96, batch_size: int = 16, sampler: Sampler | None = None) -> Path:
    """Sample, filter (:func:`degenerate`) and write the text-replay JSONL atomically; nothing to do if
    ``output`` is current."""
    output = Path(output)
    openers = read_prompts(openers_path)
    key = text_key(model_name_or_path, openers, max_new_tokens)
    if is_current(output, key):
        logger.info("text replay rows up to date: %s", output)
        return output
    sampler = sampler or hf_sampler(model_name_or_path, batch_size)
    rows, dropped = text_rows(openers, sampler(openers, max_new_tokens))
    atomic_write_text(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    mark_current(output, key)
    logger.info("wrote %d text replay rows to %s (dropped: %s)", len(rows), output,
                ", ".join(f"{n} {why}" for why, n in sorted(dropped.items())) or "none")
    return output


def ensure_text_replay(model_name_or_path: str, openers_path: str | Path, *, max_new_tokens: int = 96,
                       batch_size: int = 16) -> Path:
    """The text-replay file for this model and these openers: from the cache, the bundle or sampled
    (replay.build.cached_rows)."""
    openers = read_prompts(openers_path)
    return cached_rows(
        "text", text_key(model_name_or_path, openers, max_new_tokens),
        text_bundled_key(model_name_or_path, openers, max_new_tokens), BUNDLED,
        lambda out: build_text_replay(model_name_or_path, openers_path, out, max_new_tokens=max_new_tokens,
                                      batch_size=batch_size),
        "the default model's samples", "python -m replay --kind text --bundle True")


def bundle_text_replay(openers_path: str | Path, *, max_new_tokens: int, batch_size: int = 16,
                       output: str | Path = BUNDLED, sampler: Sampler | None = None) -> Path:
    """Sample the default model's rows into ``output`` (the file the repository ships) and stamp it with
    :func:`text_bundled_key`, so :func:`ensure_text_replay` uses it on any machine."""
    output = Path(output)
    build_text_replay(DEFAULT_MODEL_ALIAS, openers_path, output, max_new_tokens=max_new_tokens,
                      batch_size=batch_size, sampler=sampler)
    mark_current(output, text_bundled_key(DEFAULT_MODEL_ALIAS, read_prompts(openers_path), max_new_tokens))
    return output
