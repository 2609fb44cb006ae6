"""Forgetting where replay cannot teach to the test: mean token NLL on a sample of general text.

The control questions measure forgetting on facts, but replay (the base model's answers to general prompts,
mixed into training) can raise them: a control question that resembles a replay prompt is partly taught.
The general-text sample (examples/general_text.jsonl) is English text and chat prompts with replies on
topics no replay prompt, replay check, control question or corpus document touches (a test keeps them
apart: tests/evaluation/test_general_text.py), so its NLL moves only when the update changed what the model
expects of ordinary text. The figure reported is the mean negative log-likelihood per scored token
(natural log), base and updated, and the relative change.

Rows (JSONL): ``{"text": ...}`` scores every token after the first; ``{"prompt": ..., "reply": ...}`` wraps
the prompt in the model's chat template (with the evaluation's system prompt, if any) and scores the reply
and the template's end-of-turn tokens; ``{"comment": ...}`` rows (the file's provenance) are skipped.
One forward pass per row, in small batches, in this process: seconds for SmolLM2-135M on one CPU thread.
"""
from __future__ import annotations

import logging
from pathlib import Path

from utils.io_utils import DataFileError, iter_jsonl

logger = logging.getLogger(__name__)

#: rows per forward pass: the logits of a batch (rows x tokens x vocabulary) stay under ~100 MB for SmolLM2
BATCH_SIZE = 4


def load_general_text(path: str | Path) -> list[dict]:
    """The ``text`` and ``prompt``/``reply`` rows of ``path`` (``comment`` rows skipped).

    Raises:
        DataFileError: naming ``file:line`` for a row that is none of the three, or a file without rows.
    """
    rows = []
    for lineno, row in iter_jsonl(path):
        if set(row) == {"comment"}:
            continue
        ok = (set(row) == {"text"} and _nonempty(row["text"])) or \
             (set(row) == {"prompt", "reply"} and _nonempty(row["prompt"]) and _nonempty(row["reply"]))
        if not ok:
            raise DataFileError(f"{path}:{lineno}: expected {{'text'}}, {{'prompt', 'reply'}} or {{'comment'}} "
                                f"with non-empty strings, got keys {sorted(row)}")
        rows.append(row)
    if not rows:
        raise DataFileError(f"{path}: no text or prompt rows")
    return rows


def _nonempty(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def encode_row(row: dict, tokenizer, system_prompt: str | None = None) -> tuple[list[int], int]:
    """``(token ids, context)``: the tokens before index ``context`` are given, the rest are scored.

    A text row is scored from its second token (the first has nothing to be predicted from). A prompt row's
    context is the chat-templated prompt up to the assistant's turn; the reply and the end-of-turn follow.
    """
    if "text" in row:
        return tokenizer(row["text"], add_special_tokens=False)["input_ids"], 1
    turns = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + \
        [{"role": "user", "content": row["prompt"]}]
    context = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(turns + [{"role": "assistant", "content": row["reply"]}], tokenize=False)
    if not full.startswith(context):
        raise ValueError("the chat template does not render the prompt as a prefix of prompt + reply")
    # tokenized in two pieces, so the scored tokens start exactly at the reply whatever merges a tokenizer does
    ctx_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    return ctx_ids + tokenizer(full[len(context):], add_special_tokens=False)["input_ids"], len(ctx_ids)


def mean_nll(model, tokenizer, rows: list[dict], system_prompt: str | None = None,
             batch_size: int = BATCH_SIZE) -> dict:
    """``{"nll": mean NLL per scored token, "tokens": scored tokens}`` of ``model`` on ``rows``."""
    import torch

    encoded = sorted((encode_row(r, tokenizer, system_prompt) for r in rows), key=lambda e: len(e[0]))
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.inference_mode():
        for k in range(0, len(encoded), batch_size):
            batch = encoded[k: k + batch_size]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for i, (ids, context) in enumerate(batch):  # right padding: positions keep their unpadded values
                input_ids[i, : len(ids)] = torch.tensor(ids)
                mask[i, : len(ids)] = 1
                labels[i, context: len(ids)] = torch.tensor(ids[context:])
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float()
            targets = labels[:, 1:].to(device)
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1),
                                                    ignore_index=-100, reduction="sum")
            total += nll.item()
            count += int((targets != -100).sum())
    return {"nll": round(total / count, 5) if count else None, "tokens": count}


def change_pct(nll: float | None, reference: float | None) -> float | None:
    """Relative change of ``nll`` against ``reference`` in percent (positive: the model finds the text less
    likely than the reference does, i.e. forgot some of it)."""
    if nll is None or not reference:
        return None
    return round(100.0 * (nll - reference) / reference, 3)
