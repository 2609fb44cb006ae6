"""Supervised fine-tuning data: JSONL rows -> chat-template tokens with assistant-only labels, or plain text.

Pipeline: :func:`load_rows` (any format of :mod:`utils.data_formats`, errors name file:line) ->
:func:`split_rows` (seeded, disjoint validation hold-out) -> :class:`SupervisedDataset` (eager) or
:class:`LazySupervisedDataset` (tokenise on first access) -> optional :class:`PackedDataset` ->
:class:`SFTCollator` (dynamic padding, a shared prompt prefix computed once, or packed rows whose
attention cannot cross examples).

Why the details matter: the pad token must differ from the end-of-turn token, otherwise masking
padding also masks every ``<|im_end|>`` and the model never learns to stop; validation rows must not
also be training rows, or the validation loss measures memorisation; padding every example to the
maximum length would spend most of the compute on pad tokens, since QA pairs are short.

A ``{"text": ...}`` row (text replay: the base model's own plain-text samples, replay/text.py) is tokenised
without the chat template and every token after the first is trained (:func:`tokenize_text`).

Rows of the replay files (``build_datasets(..., distill_paths=...)``, with ``--replay_loss kl``) carry
``"distill": 1``; :class:`SFTCollator` turns it into a per-token ``distill`` tensor aligned with ``labels``,
which tells the trainer to score those tokens against the base model's distribution
(:func:`finetuning.trainer.replay_distill_loss`). Per token, not per row, so packed and shared-prefix
sequences, which hold several rows, keep each row's flag.
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.data import Dataset

from utils.data_formats import is_plain_text, to_messages
from utils.io_utils import DataFileError, iter_jsonl

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
COLLECT_HINT = "bash shells/collect_data.sh"


@dataclass
class Row:
    """One conversation (or plain-text row, :func:`~utils.data_formats.is_plain_text`) and where it came from
    (for error messages)."""

    source: str  # "file:line"
    messages: list[dict]
    distill: bool = False  # a replay row scored against the base model (--replay_loss kl), not with cross-entropy


def load_rows(path: str | Path, *, skip_bad: bool = False, distill: bool = False) -> list[Row]:
    """Read a JSONL file of conversations in any supported format, or plain-text ``{"text": ...}`` rows;
    each row's ``distill`` is ``distill``.

    Raises :class:`DataFileError` naming the file (and line) for a missing or empty file and, unless
    ``skip_bad``, for the first malformed line or row; with ``skip_bad`` bad rows are counted and logged.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"{path}: training data not found. Make it with `{COLLECT_HINT}` (the QA collector), "
            f"or pass another file with --data_path / -d."
        )
    bad: list[tuple[int, str]] = []
    rows: list[Row] = []
    for lineno, obj in iter_jsonl(path, skip_bad=skip_bad, bad_lines=bad):
        try:
            rows.append(Row(f"{path}:{lineno}", to_messages(obj, allow_text=True), distill))
        except (ValueError, TypeError, AttributeError) as exc:
            reason = f"{path}:{lineno}: unusable row ({exc})"
            if not skip_bad:
                raise DataFileError(reason + " — fix it or pass --skip_bad_rows True") from None
            bad.append((lineno, reason))
    if bad:
        logger.warning("Skipped %d bad line(s) of %s; first: %s", len(bad), path, bad[0][1])
    if not rows:
        raise DataFileError(f"{path}: no usable rows (file empty or every row bad). Make data with `{COLLECT_HINT}`.")
    return rows


def split_rows(rows: list[Row], validation_size: int, seed: int) -> tuple[list[Row], list[Row]]:
    """Hold out ``validation_size`` rows for evaluation, disjoint from the training rows.

    Identical conversations are kept on the same side, so an exact duplicate of a validation row can
    never leak into training. Raises ``ValueError`` when the hold-out would leave no training row.
    """
    if validation_size <= 0:
        return rows, []
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(json.dumps(row.messages, sort_keys=True, ensure_ascii=False), []).append(row)
    keys = list(groups)
    if validation_size >= len(keys):
        raise ValueError(
            f"--validation_size {validation_size} is too large: the data has {len(keys)} distinct rows "
            f"({len(rows)} in all) and at least one must stay for training."
        )
    random.Random(seed).shuffle(keys)
    held = set(keys[:validation_size])
    train = [r for k in keys if k not in held for r in groups[k]]
    valid = [groups[k][0] for k in keys[:validation_size]]
    return train, valid


def ensure_pad_token(tokenizer) -> None:
    """Give the tokenizer a pad token different from EOS (``<|endoftext|>`` or UNK when they exist).

    Padding is never found by comparing ids (attention masks come from lengths), but a distinct pad
    keeps any downstream ``input_ids != pad`` logic from erasing the end-of-turn token.
    """
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return
    vocab = tokenizer.get_vocab()
    for candidate in ("<|endoftext|>", "<|finetune_right_pad_id|>", "<pad>", "[PAD]", tokenizer.unk_token):
        if candidate and candidate in vocab and vocab[candidate] != tokenizer.eos_token_id:
            tokenizer.pad_token = candidate
            logger.info("pad token set to %r (id %d), distinct from EOS %r", candidate, vocab[candidate], tokenizer.eos_token)
            return
    raise ValueError(
        f"tokenizer has no token usable as padding other than EOS {tokenizer.eos_token!r}; add one "
        "(tokenizer.add_special_tokens({'pad_token': '<pad>'})) and resize the embeddings"
    )


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def tokenize_conversation(tokenizer, messages: list[dict], max_length: int) -> tuple[dict, bool]:
    """Tokenise with the model's own chat template; label only assistant turns.

    Each assistant turn is located by rendering the conversation up to it (with the generation
    prompt) and up to its end; its text and its end-of-turn token (EOS) get labels, everything else
    ``-100``. If the template does not emit EOS after the last answer, EOS is appended and labelled
    so the model learns to stop. Returns ``({"input_ids", "labels"}, truncated)``.
    Raises ``ValueError`` if the template is not prefix-consistent (earlier turns re-rendered).
    """
    full = _render(tokenizer, messages, add_generation_prompt=False)
    eos = tokenizer.eos_token
    spans: list[tuple[int, int]] = []
    last_has_eos = False
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], add_generation_prompt=True)
        upto = _render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not (full.startswith(prefix) and full.startswith(upto) and len(upto) > len(prefix)):
            raise ValueError("the chat template re-renders earlier turns; cannot locate assistant tokens")
        segment = upto[len(prefix):]
        cut = segment.rfind(eos) if eos else -1
        last_has_eos = cut >= 0
        end = len(prefix) + (cut + len(eos) if cut >= 0 else len(segment.rstrip()))
        spans.append((len(prefix), end))
    # verbose=False: the tokenizer's own "longer than the maximum" warning names no row; ours does.
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids = list(enc["input_ids"])
    labels = [IGNORE_INDEX] * len(ids)
    k = 0
    for t, (start, stop) in enumerate(enc["offset_mapping"]):
        while k < len(spans) and start >= spans[k][1]:
            k += 1
        if k < len(spans) and spans[k][0] <= start < spans[k][1] and stop > start:
            labels[t] = ids[t]
    if messages[-1]["role"] == "assistant" and not last_has_eos and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    truncated = len(ids) > max_length
    if truncated:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}, truncated


def tokenize_text(tokenizer, text: str, max_length: int) -> tuple[dict, bool]:
    """Tokenise a plain-text row as it is, with no chat template and no special tokens; label every token
    but the first (nothing comes before it to predict it from). Returns ``({"input_ids", "labels"}, truncated)``.

    No end-of-text token is appended. SmolLM2 separated its pretraining documents with ``<|endoftext|>``, but
    a text-replay row is an excerpt cut at a token cap, not a whole document: a labelled end there would teach
    the model that text stops after a hundred tokens (and ``<|im_end|>``, the tokenizer's EOS, ends a chat turn,
    not a text). Nor is a BOS token added: the tokenizer adds none, and evaluation/general_text.py scores text
    rows the same way, so the two see plain text alike.
    """
    ids = list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    truncated = len(ids) > max_length
    ids = ids[:max_length]
    return {"input_ids": ids, "labels": [IGNORE_INDEX] + ids[1:]}, truncated


def _flagged(example: dict, row: Row) -> dict:
    """``example`` with ``"distill": 1`` when ``row`` is a replay row to distill; others carry no key, so batches
    without replay rows (and every batch with --replay_loss ce) are exactly what they were."""
    return {**example, "distill": 1} if row.distill else example


def distill_tokens(feature: dict) -> list[int]:
    """The per-token distill flag of a tokenised row (a row flag repeated) or of a packed sequence (its list)."""
    flag = feature.get("distill", 0)
    return list(flag) if isinstance(flag, (list, tuple)) else [int(flag)] * len(feature["input_ids"])


def _has_target(example: dict) -> bool:
    return any(label != IGNORE_INDEX for label in example["labels"])


def _tokenize_row(tokenizer, row: Row, max_length: int) -> tuple[dict, bool]:
    try:
        if is_plain_text(row.messages):
            return tokenize_text(tokenizer, row.messages[0]["content"], max_length)
        return tokenize_conversation(tokenizer, row.messages, max_length)
    except Exception as exc:  # noqa: BLE001 - jinja / tokenizer errors: name the row, not a traceback
        raise DataFileError(f"{row.source}: cannot tokenise this row ({type(exc).__name__}: {exc})") from exc


def _some(sources: list[str], n: int = 5) -> str:
    return ", ".join(sources[:n]) + (f" and {len(sources) - n} more" if len(sources) > n else "")


def tokenize_rows(rows: list[Row], tokenizer, max_length: int, desc: str = "tokenise",
                  num_proc: int = 0) -> list[tuple[dict, bool]]:
    """:func:`tokenize_conversation` (:func:`tokenize_text` for a plain-text row) of every row, in order.

    With ``num_proc`` > 1 the rows are tokenised by a ``datasets`` map over that many processes (large
    inputs: the chat template and tokenizer run in Python, one row at a time); otherwise here, with a
    progress bar for large files. Raises :class:`DataFileError` naming the first row that cannot be
    tokenised either way.
    """
    if num_proc > 1 and len(rows) > num_proc:
        import datasets

        def encode(batch: dict) -> dict:
            out = {"input_ids": [], "labels": [], "truncated": []}
            for source, messages in zip(batch["source"], batch["messages"]):
                ex, cut = _tokenize_row(tokenizer, Row(source, messages), max_length)
                out["input_ids"].append(ex["input_ids"])
                out["labels"].append(ex["labels"])
                out["truncated"].append(cut)
            return out

        table = datasets.Dataset.from_dict({"source": [r.source for r in rows],
                                            "messages": [json.dumps(r.messages) for r in rows]})
        table = table.map(lambda b: encode({"source": b["source"], "messages": [json.loads(m) for m in b["messages"]]}),
                          batched=True, num_proc=num_proc, remove_columns=["source", "messages"], desc=desc)
        return [({"input_ids": r["input_ids"], "labels": r["labels"]}, r["truncated"]) for r in table]
    from tqdm.auto import tqdm

    return [_tokenize_row(tokenizer, row, max_length)
            for row in tqdm(rows, desc=desc, mininterval=2, disable=len(rows) < 2000)]


class SupervisedDataset(Dataset):
    """Tokenises every row up front (one tqdm pass).

    A row longer than ``max_length`` tokens is truncated at the end and named (``file:line``) in a
    warning; a row left with no answer token is dropped and named too. Raises
    :class:`DataFileError` naming the row for one that cannot be tokenised, and ``ValueError`` when
    no row is left to train on.
    """

    def __init__(self, rows: list[Row], tokenizer, max_length: int, desc: str = "tokenise", num_proc: int = 0):
        self.examples: list[dict] = []
        truncated, dropped = [], []
        for row, (ex, cut) in zip(rows, tokenize_rows(rows, tokenizer, max_length, desc, num_proc)):
            if not _has_target(ex):
                dropped.append(row.source)
                continue
            if cut:
                truncated.append(row.source)
            self.examples.append(_flagged(ex, row))
        if truncated:
            logger.warning("%d of %d rows are longer than --model_max_length %d tokens and were truncated: %s",
                           len(truncated), len(rows), max_length, _some(truncated))
        if dropped:
            logger.warning("%d row(s) dropped: no answer token left after truncation to --model_max_length %d: %s",
                           len(dropped), max_length, _some(dropped))
        if not self.examples:
            files = ", ".join(dict.fromkeys(r.source.rsplit(":", 1)[0] for r in rows))
            raise ValueError(f"{files}: no trainable rows left after truncation to --model_max_length {max_length}; "
                             "raise --model_max_length")
        self.lengths = [len(ex["input_ids"]) for ex in self.examples]
        self.num_truncated = len(truncated)
        self.num_dropped = len(dropped)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return self.examples[i]


class LazySupervisedDataset(Dataset):
    """Tokenises a row on first access and caches it: start-up stays instant on large files.

    ``lengths`` (used by length-grouped sampling) are estimated from characters until a row is
    tokenised, so sampling never forces a full tokenisation pass.
    """

    def __init__(self, rows: list[Row], tokenizer, max_length: int):
        self.rows, self.tokenizer, self.max_length = rows, tokenizer, max_length
        self.cache: dict[int, dict] = {}
        self.lengths = [sum(len(m["content"]) for m in r.messages) // 3 + 16 for r in rows]
        self.num_truncated = 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        if i not in self.cache:
            ex, cut = _tokenize_row(self.tokenizer, self.rows[i], self.max_length)
            if cut:
                self.num_truncated += 1
                logger.warning("%s: longer than --model_max_length %d, truncated%s", self.rows[i].source,
                               self.max_length, "" if _has_target(ex) else " (no answer token left: contributes no loss)")
            self.cache[i] = _flagged(ex, self.rows[i])
        return self.cache[i]


class PackedDataset(Dataset):
    """Packs short examples into sequences of at most ``max_length`` tokens (first-fit decreasing).

    Each packed item carries ``position_ids`` restarting at 0 for every example; with no 2-D
    attention mask, transformers derives a block-diagonal causal mask from them (sdpa/eager) or
    varlen boundaries (flash-attention), so attention never crosses examples — provided the model
    runs without a KV cache (``config.use_cache = False``, as :func:`finetuning.model.load_model` sets):
    transformers skips the detection when a cache is present. The first label of
    every example is ignored so no token is trained to predict the start of the next example.
    """

    def __init__(self, dataset: Dataset, max_length: int):
        items = [dataset[i] for i in range(len(dataset))]
        order = sorted(range(len(items)), key=lambda i: -len(items[i]["input_ids"]))
        bins: list[list[int]] = []
        room: list[int] = []
        for i in order:
            n = len(items[i]["input_ids"])
            slot = next((b for b, free in enumerate(room) if free >= n), None)
            if slot is None:
                bins.append([i])
                room.append(max_length - n)
            else:
                bins[slot].append(i)
                room[slot] -= n
        self.packs = []
        for members in bins:
            ids, labels, pos, distill = [], [], [], []
            for i in members:
                ex = items[i]
                ids += ex["input_ids"]
                labels += [IGNORE_INDEX] + list(ex["labels"][1:])
                pos += list(range(len(ex["input_ids"])))
                distill += distill_tokens(ex)
            pack = {"input_ids": ids, "labels": labels, "position_ids": pos}
            self.packs.append({**pack, "distill": distill} if any(distill) else pack)
        self.lengths = [len(p["input_ids"]) for p in self.packs]
        self.num_truncated = getattr(dataset, "num_truncated", 0)
        self.num_dropped = getattr(dataset, "num_dropped", 0)
        logger.info("packed %d examples into %d sequences of <= %d tokens (fill %.0f%%)", len(items),
                    len(self.packs), max_length, 100 * sum(self.lengths) / max(1, len(self.packs) * max_length))

    def __len__(self) -> int:
        return len(self.packs)

    def __getitem__(self, i: int) -> dict:
        return self.packs[i]


def shared_prefix_length(features: list[dict]) -> int:
    """Tokens every example of ``features`` starts with that can be computed once for all of them.

    The longest common prefix of the ``input_ids`` (with a chat template, its system prompt and the
    start of the user turn), cut so that neither a prefix token nor the first token after it carries a
    label: every example's first own token then follows the prefix in the original row but another
    example in a shared sequence, so its label must be ignored in both for the loss to stay the same.
    A plain-text row (:func:`tokenize_text`) is trained from its second token, so a set of rows holding one
    has no shared prefix (0); :class:`SFTCollator` computes the prefix of the other rows of a batch.
    """
    first = features[0]["input_ids"]
    n = min(len(f["input_ids"]) for f in features)
    for f in features:
        ids = f["input_ids"]
        n = next((i for i in range(n) if ids[i] != first[i]), n)
        labelled = next((i for i, label in enumerate(f["labels"]) if label != IGNORE_INDEX), len(ids))
        n = min(n, labelled - 1)
    return max(0, n)


def has_prompt(feature: dict) -> bool:
    """Whether a tokenised row starts with unlabelled tokens it could share with others (a chat row's prompt);
    a plain-text row (:func:`tokenize_text`) is trained from its second token and has none."""
    return all(label == IGNORE_INDEX for label in feature["labels"][:2])


@dataclass
class SFTCollator:
    """Pads a batch to its own longest item (right padding, labels ``-100``), or shares its common prefix.

    Unpacked batches get an ``attention_mask`` built from lengths (never from pad ids). Packed
    batches get no attention mask: the padding tail becomes its own segment (positions restart at
    0), so the position-id based block mask keeps real tokens from attending to it.

    With ``shared_prefix_tokens`` set, an unpacked batch whose rows start with the same tokens (the chat
    template's system prompt: 24 of the default recipe's ~85 tokens per row) becomes a few sequences of
    at most that many tokens and of even length: the prefix once, then several rows, each with the
    position ids it has alone and a 4-D mask that lets it attend only to the prefix and to itself. Every
    row sees exactly what it sees alone, so the loss and gradients are those of the padded batch, with
    the prefix computed once per sequence instead of once per row (``tests/finetuning/test_shared_prefix.py``).
    The 4-D boolean mask needs the sdpa attention kernel. The cap bounds the attention, which grows with
    the square of the sequence length.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    shared_prefix_tokens: int = 0

    def __call__(self, features: list[dict]) -> dict:
        if self.shared_prefix_tokens and "position_ids" not in features[0] and len(features) > 1:
            # Rows without a prompt (plain text, trained from their second token) cannot share one: they go
            # into the sequences as rows of their own that do not see the prefix.
            sharing = [f for f in features if has_prompt(f)]
            prefix = shared_prefix_length(sharing) if sharing else 0
            groups = self._prefix_groups(features, prefix) if prefix > 0 else None
            if groups is not None:
                return self._share_prefix(groups, sharing[0]["input_ids"][:prefix])
        longest = self._padded_length(max(len(f["input_ids"]) for f in features))
        packed = "position_ids" in features[0]
        ids, labels, extra, distill = [], [], [], []
        for f in features:
            n_pad = longest - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * n_pad)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * n_pad)
            distill.append(distill_tokens(f) + [0] * n_pad)
            if packed:
                extra.append(list(f["position_ids"]) + list(range(n_pad)))
            else:
                extra.append([1] * len(f["input_ids"]) + [0] * n_pad)
        batch = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}
        batch["position_ids" if packed else "attention_mask"] = torch.tensor(extra)
        return _with_distill(batch, distill)

    def _padded_length(self, longest: int) -> int:
        m = self.pad_to_multiple_of
        return -(-longest // m) * m if m else longest

    def _prefix_groups(self, features: list[dict], prefix: int) -> list[list[dict]] | None:
        """Rows split into the sequences that run the fewest token slots (prefix + longest group, times the
        number of sequences), each at most ``shared_prefix_tokens`` long; None if padding runs fewer.

        Rows are dealt longest first to the shortest sequence, so sequences come out of even length.
        """
        own = [len(f["input_ids"]) - (prefix if has_prompt(f) else 0) for f in features]
        order = sorted(range(len(features)), key=lambda i: -own[i])
        best, best_slots = None, len(features) * max(len(f["input_ids"]) for f in features)  # = padding
        for n_seq in range(1, len(features)):
            members: list[list[int]] = [[] for _ in range(n_seq)]
            load = [0] * n_seq
            for i in order:
                g = load.index(min(load))
                members[g].append(i)
                load[g] += own[i]
            length = prefix + max(load)
            if length <= self.shared_prefix_tokens and n_seq * length < best_slots:
                best, best_slots = members, n_seq * length
        return None if best is None else [[features[i] for i in sorted(m)] for m in best]

    def _share_prefix(self, groups: list[list[dict]], prefix_ids: list[int]) -> dict:
        # segment 0 = the prefix, k = the k-th row, -1 = padding (attends to itself, never attended to);
        # a row without a prompt is whole in its segment, from position 0, and does not see the prefix
        prefix = len(prefix_ids)
        seqs = []
        for group in groups:
            ids, labels = list(prefix_ids), [IGNORE_INDEX] * prefix
            pos, seg, sees, distill = list(range(prefix)), [0] * prefix, [True] * prefix, [0] * prefix
            for k, f in enumerate(group, start=1):
                start = prefix if has_prompt(f) else 0
                ids += f["input_ids"][start:]
                labels += f["labels"][start:]
                pos += range(start, len(f["input_ids"]))
                seg += [k] * (len(f["input_ids"]) - start)
                sees += [bool(start)] * (len(f["input_ids"]) - start)
                distill += distill_tokens(f)[start:]
            seqs.append((ids, labels, pos, seg, sees, distill))
        longest = self._padded_length(max(len(s[0]) for s in seqs))
        pad = [(longest - len(s[0])) for s in seqs]
        segment = torch.tensor([s[3] + [-1] * n for s, n in zip(seqs, pad)])
        sees_prefix = torch.tensor([s[4] + [False] * n for s, n in zip(seqs, pad)])
        causal = torch.ones(longest, longest, dtype=torch.bool).tril()
        visible = (segment[:, :, None] == segment[:, None, :]) | ((segment[:, None, :] == 0) & sees_prefix[:, :, None])
        return _with_distill({
            "input_ids": torch.tensor([s[0] + [self.pad_token_id] * n for s, n in zip(seqs, pad)]),
            "labels": torch.tensor([s[1] + [IGNORE_INDEX] * n for s, n in zip(seqs, pad)]),
            "position_ids": torch.tensor([s[2] + list(range(n)) for s, n in zip(seqs, pad)]),
            "attention_mask": (visible & causal)[:, None],
        }, [s[5] + [0] * n for s, n in zip(seqs, pad)])


def _with_distill(batch: dict, distill: list[list[int]]) -> dict:
    """``batch`` plus a bool ``distill`` tensor shaped like its labels, only when some token is flagged."""
    if any(any(row) for row in distill):
        batch["distill"] = torch.tensor(distill, dtype=torch.bool)
    return batch


def build_datasets(data_args, tokenizer, seed: int, distill_paths=()) -> tuple[Dataset, Dataset | None]:
    """Load, split, tokenise (eager or lazy) and optionally pack; returns ``(train, eval or None)``.

    The training rows of the files in ``distill_paths`` (the replay files finetune.py adds, with
    ``--replay_loss kl``) are flagged to distill; validation rows never are: the validation loss stays
    cross-entropy on every row.
    """
    # A comma-separated list mixes files, e.g. the collected QA and self-distilled replay rows.
    distill_paths = {str(p) for p in distill_paths}
    rows = [row for path in data_args.data_path.split(",") if path.strip()
            for row in load_rows(path.strip(), skip_bad=data_args.skip_bad_rows, distill=path.strip() in distill_paths)]
    train_rows, eval_rows = split_rows(rows, data_args.validation_size if data_args.validation else 0, seed)
    eval_rows = [replace(row, distill=False) for row in eval_rows]
    logger.info("%s: %d training rows, %d validation rows", data_args.data_path, len(train_rows), len(eval_rows))
    max_len = data_args.model_max_length
    if data_args.lazy_preprocess and not data_args.packing:
        train = LazySupervisedDataset(train_rows, tokenizer, max_len)
    else:
        train = SupervisedDataset(train_rows, tokenizer, max_len, num_proc=data_args.preprocessing_num_workers)
    valid = SupervisedDataset(eval_rows, tokenizer, max_len, desc="tokenise eval") if eval_rows else None
    if data_args.packing:
        train = PackedDataset(train, max_len)
    return train, valid
