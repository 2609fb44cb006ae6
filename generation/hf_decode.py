"""Continuous batching for the hf backend on a CPU: finished replies leave the batch, waiting prompts join it.

``model.generate`` keeps every row of a batch in each forward pass until the longest reply of the batch
ends. On a CPU a decode step costs roughly in proportion to its rows (one thread, SmolLM2-135M in fp32:
about 0.10 s for 1 row, 0.43 s for 32), so a batch of 32 short answers with one long one spends most
of its time computing rows that have already ended. :func:`continuous_generate` runs its own decode
loop over a transformers ``DynamicCache`` instead: a row is dropped from the cache as soon as it ends,
and once a quarter of the slots are free the next waiting prompts are prefilled and their cache rows
joined to the running batch (left-padded to a common length; the attention mask hides the padding).
Greedy replies are the ones ``model.generate`` gives (tests/generation/test_hf_decode.py); sampling
draws from the same distribution (temperature, top-k, top-p, as ``generate`` applies them).

Only plain decoder-only models whose cache layers are all full-attention ``DynamicLayer``s and whose
generation config adds no other logits processor qualify (:func:`supports_continuous`); the backend
uses ``model.generate`` for the others.
"""
from __future__ import annotations

from collections import deque

from .base import cut_repeated_lines, repeated_lines_end

# Generation-config fields that add a logits processor this loop does not apply, with their neutral values.
_NEUTRAL = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "min_length": 0, "min_new_tokens": 0,
            "typical_p": 1.0, "min_p": None, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0,
            "encoder_repetition_penalty": 1.0, "exponential_decay_length_penalty": None, "bad_words_ids": None,
            "suppress_tokens": None, "begin_suppress_tokens": None, "forced_bos_token_id": None,
            "forced_eos_token_id": None, "sequence_bias": None, "renormalize_logits": False,
            "stop_strings": None, "num_beams": 1}
TOP_K_DEFAULT = 50  # what generate() applies when sampling and neither the call nor the model sets top_k


def supports_continuous(model) -> bool:
    """Whether :func:`continuous_generate` gives what ``model.generate`` would for this model."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    gc = model.generation_config
    for name, neutral in _NEUTRAL.items():
        value = getattr(gc, name, None)
        if value is not None and value != neutral and value != []:
            return False
    try:
        layers = DynamicCache(config=config).layers
    except Exception:  # noqa: BLE001 - an unusual config: use generate()
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def stop_ids(model, tok) -> set[int]:
    """Token ids that end a reply: the generation config's eos id(s), else the tokenizer's."""
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tok.eos_token_id
    return set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}


_NEWLINE_IDS: dict = {}


def newline_ids(tok) -> frozenset[int]:
    """Token ids whose text holds a newline: where a reply's line can end (computed once per vocabulary)."""
    key = (getattr(tok, "name_or_path", ""), len(tok))
    if key not in _NEWLINE_IDS:
        texts = tok.batch_decode([[i] for i in range(len(tok))])
        _NEWLINE_IDS[key] = frozenset(i for i, t in enumerate(texts) if "\n" in t)
    return _NEWLINE_IDS[key]


class LoopStop:
    """``sampling.stop_repeated_lines`` during decoding: at each newline token, whether the reply so far
    has looped (:func:`~.base.repeated_lines_end`), so its row can leave the batch."""

    def __init__(self, tok, limit: int) -> None:
        self.tok, self.limit = tok, limit
        self.newlines = newline_ids(tok) if limit > 0 else frozenset()

    def __call__(self, reply_ids: list[int]) -> bool:
        if not self.newlines or not reply_ids or reply_ids[-1] not in self.newlines:
            return False
        return repeated_lines_end(self.tok.decode(reply_ids, skip_special_tokens=True), self.limit) is not None


def _pad_left_to(t, length: int):
    """Pad ``t`` on the left of its sequence dimension (-1 for masks, -2 for cache tensors) to ``length`` with zeros."""
    import torch

    dim = -1 if t.dim() == 2 else -2
    missing = length - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


class _Picker:
    """Next-token choice: argmax when greedy, else temperature -> top-k -> top-p -> multinomial."""

    def __init__(self, model, sampling, seed: int) -> None:
        import torch

        self.greedy = sampling.temperature <= 0
        self.warpers = []
        if not self.greedy:
            from transformers.generation.logits_process import (
                TemperatureLogitsWarper,
                TopKLogitsWarper,
                TopPLogitsWarper,
            )

            top_k = model.generation_config.top_k
            top_k = TOP_K_DEFAULT if top_k is None else top_k
            if sampling.temperature != 1.0:
                self.warpers.append(TemperatureLogitsWarper(sampling.temperature))
            if top_k:
                self.warpers.append(TopKLogitsWarper(top_k=top_k))
            if sampling.top_p < 1.0:
                self.warpers.append(TopPLogitsWarper(top_p=sampling.top_p))
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, logits):
        import torch

        logits = logits.float()
        if self.greedy:
            return logits.argmax(-1)
        for warp in self.warpers:
            logits = warp(None, logits)
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs.cpu(), 1, generator=self.generator).squeeze(1).to(logits.device)


def continuous_generate(model, tok, texts: list[str], sampling, seed: int, slots: int,
                        on_reply=None) -> tuple[list[str], int]:
    """Replies to ``texts`` (already chat-formatted), at most ``slots`` in the batch at once.

    Returns ``(replies, new tokens)``; a reply ends with a stop token, after ``sampling.max_new_tokens`` or
    where it starts to loop (``sampling.stop_repeated_lines``).
    Prompts join in the order given (the caller sorts them by length so joiners pad little).
    ``on_reply(index, text)`` is called as each reply ends.
    """
    import torch
    from transformers import DynamicCache

    slots = max(1, int(slots))
    refill_at = max(1, slots // 4)
    stops = stop_ids(model, tok)
    pick = _Picker(model, sampling, seed)
    looped = LoopStop(tok, sampling.stop_repeated_lines)
    device = model.device
    waiting = deque(range(len(texts)))
    replies: list[list[int]] = [[] for _ in texts]
    rows: list[int] = []                      # which text each cache row belongs to
    cache = mask = nxt = None                 # the running batch: KV cache, attention mask, next input tokens
    ended = [False] * len(texts)
    out = [""] * len(texts)

    def accept(idx: list[int], tokens) -> None:
        # The stop token stays in the reply, as generate() leaves it: decoding drops it when it is special.
        for i, t in zip(idx, tokens.tolist()):
            replies[i].append(t)
            ended[i] = t in stops or len(replies[i]) >= sampling.max_new_tokens or looped(replies[i])
            if ended[i]:
                text = tok.decode(replies[i], skip_special_tokens=True)
                out[i] = cut_repeated_lines(text, sampling.stop_repeated_lines).strip()
                if on_reply is not None:
                    on_reply(i, out[i])

    with torch.inference_mode():
        while waiting or rows:
            if waiting and (not rows or slots - len(rows) >= refill_at):
                join = [waiting.popleft() for _ in range(min(slots - len(rows), len(waiting)))]
                enc = tok([texts[i] for i in join], return_tensors="pt", padding=True, add_special_tokens=False)
                ids, m = enc["input_ids"].to(device), enc["attention_mask"].to(device)
                position_ids = (m.long().cumsum(-1) - 1).clamp(min=0)
                new_cache = DynamicCache(config=model.config)
                logits = model(input_ids=ids, attention_mask=m, position_ids=position_ids,
                               past_key_values=new_cache, use_cache=True, logits_to_keep=1).logits[:, -1]
                first = pick(logits)
                accept(join, first)
                if cache is None:
                    cache, mask, nxt = new_cache, m, first
                else:  # join the two batches: both left-padded to the longer one
                    length = max(mask.shape[1], m.shape[1])
                    for old, new in zip(cache.layers, new_cache.layers):
                        old.keys = torch.cat([_pad_left_to(old.keys, length), _pad_left_to(new.keys, length)])
                        old.values = torch.cat([_pad_left_to(old.values, length), _pad_left_to(new.values, length)])
                    mask = torch.cat([_pad_left_to(mask, length), _pad_left_to(m, length)])
                    nxt = torch.cat([nxt, first])
                rows += join
            keep = [j for j, i in enumerate(rows) if not ended[i]]
            if len(keep) < len(rows):
                rows = [rows[j] for j in keep]
                if not rows:
                    cache = mask = nxt = None
                    continue
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, nxt = mask[index], nxt[index]
                # Columns no remaining row attends to (left padding of rows that have left) are dropped.
                start = int(mask.any(0).nonzero()[0])
                if start:
                    for layer in cache.layers:
                        layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
                    mask = mask[:, start:]
            if not rows:
                continue
            position_ids = mask.sum(-1, keepdim=True).long()
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            logits = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=position_ids,
                           past_key_values=cache, use_cache=True).logits[:, -1]
            nxt = pick(logits)
            accept(rows, nxt)
    return out, sum(t != tok.pad_token_id for r in replies for t in r)  # counted as generate()'s are
