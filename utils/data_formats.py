"""Conversation formats users bring: sharegpt ``conversations``, OpenAI ``messages``, alpaca; and plain text.

Everything is normalised to OpenAI-style ``[{"role", "content"}]`` so that tokenisation can use the
model's own chat template. A plain-text training row ``{"text": ...}`` (text replay, replay/text.py) becomes
one message of the pseudo-role :data:`TEXT_ROLE`, which the fine-tuning data tokenises without a template.
Pure functions; errors say what is wrong with the row.
"""
from __future__ import annotations

_ROLE_ALIASES = {
    "user": "user", "human": "user", "question": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant", "answer": "assistant",
    "system": "system",
}


#: the pseudo-role of a plain-text row: no chat template, every token trained (finetuning/data.py)
TEXT_ROLE = "text"
_CHAT_KEYS = ("conversations", "messages", "instruction")


def is_plain_text(messages: list[dict]) -> bool:
    """Whether ``messages`` is a plain-text row as :func:`to_messages` returns it with ``allow_text``."""
    return len(messages) == 1 and messages[0]["role"] == TEXT_ROLE


def _role(value: str) -> str:
    role = _ROLE_ALIASES.get(str(value).strip().lower())
    if role is None:
        raise ValueError(f"unknown role {value!r} (expected user/assistant/system or human/gpt)")
    return role


def to_messages(row: dict, *, allow_text: bool = False) -> list[dict]:
    """Return the row as a list of ``{"role", "content"}`` messages.

    Accepts ``{"conversations": [{"from", "value"}]}`` (the collector's and the seed's format),
    ``{"messages": [{"role", "content"}]}`` and ``{"instruction", "input", "output"}``; with ``allow_text``
    (training data) also ``{"text": ...}`` with none of those keys, returned as ``[{"role": TEXT_ROLE, ...}]``.
    Raises ``ValueError`` if the row has none of them, an empty turn or text, or no assistant turn.
    """
    if allow_text and "text" in row and not any(k in row for k in _CHAT_KEYS):
        if not isinstance(row["text"], str) or not row["text"].strip():
            raise ValueError("empty or non-text 'text'")
        return [{"role": TEXT_ROLE, "content": row["text"]}]
    if "conversations" in row:
        turns = row["conversations"]
        if not isinstance(turns, list):
            raise ValueError("'conversations' must be a list")
        msgs = [{"role": _role(t.get("from", t.get("role", ""))), "content": t.get("value", t.get("content"))}
                for t in turns if isinstance(t, dict)]
        if len(msgs) != len(turns):
            raise ValueError("every turn in 'conversations' must be an object")
    elif "messages" in row:
        turns = row["messages"]
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise ValueError("'messages' must be a list of objects")
        msgs = [{"role": _role(t.get("role", "")), "content": t.get("content")} for t in turns]
    elif "instruction" in row and "output" in row:
        prompt = str(row["instruction"]).strip()
        if str(row.get("input") or "").strip():
            prompt = f"{prompt}\n\n{str(row['input']).strip()}"
        msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]
    else:
        raise ValueError("row has none of 'conversations', 'messages', or 'instruction'+'output'"
                         + (", or 'text'" if allow_text else ""))
    for m in msgs:
        if not isinstance(m["content"], str) or not m["content"].strip():
            raise ValueError(f"empty or non-text {m['role']} turn")
    if not any(m["role"] == "assistant" for m in msgs):
        raise ValueError("row has no assistant turn")
    return msgs
