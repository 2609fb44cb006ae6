"""The reading baseline: the base model answers each question with its document in the prompt.

Closed-book training has to beat this line: if the updated model knows a document worse than the same
base model reading it, the update taught less than a prompt does. Each question's row names its document
(``doc`` or the collector's ``file_name``, relative to the documents folder); the document is read with the
collector's reader (data_processor/stages/step1_read.py), so it is the text the collector learned from. Only
that one document is in the prompt: no other document, no retrieval, no system message beyond the
evaluation's own ``--system_prompt``. Decoding is the closed-book evaluation's: greedy, ``--max_new_tokens``.

A document too long for the model's context (SmolLM2: 8192 tokens) is cut to its first tokens, so that the
prompt and a full-length reply fit, and a warning names it.
"""
from __future__ import annotations

import logging
from pathlib import Path

from data_processor.stages.step1_read import ReadError, read_document
from utils.io_utils import DataFileError

logger = logging.getLogger(__name__)

#: tokens of the context left free beyond the prompt without its document and the reply
CONTEXT_SLACK = 8
#: The user turn of every open-book question: short, the document first (as read), then the question.
OPEN_BOOK_PROMPT = "Read this document and answer the question about it.\n\nDocument:\n{document}\n\nQuestion: {question}"


def document_path(root: Path, doc: str | None, source: str) -> Path:
    """The file a question's ``doc`` names under ``root`` (a folder, or the one document itself).

    Raises:
        DataFileError: naming the question's ``file:line`` when it names no document or one that is not there.
    """
    if not doc:
        raise DataFileError(f"{source}: the question names no document ('doc' or 'file_name'), which the "
                            "open-book baseline needs")
    path = root if root.is_file() else root / doc
    if root.is_file() and root.name != doc or not path.is_file():
        raise DataFileError(f"{source}: its document {doc!r} is not in {root}")
    return path


def fit_document(text: str, tokenizer, max_tokens: int) -> tuple[str, int]:
    """``text`` cut to its first ``max_tokens`` tokens (unchanged when it fits) and its length in tokens."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text, len(ids)
    return tokenizer.decode(ids[:max(0, max_tokens)]), len(ids)


def model_context(model_path: str | Path, tokenizer) -> int:
    """The model's context length in tokens: ``max_position_embeddings`` of its config, else the tokenizer's
    ``model_max_length`` (which some tokenizers set to a huge placeholder), else 2048."""
    from transformers import AutoConfig

    try:
        n = getattr(AutoConfig.from_pretrained(model_path), "max_position_embeddings", None)
    except (OSError, ValueError):
        n = None
    if not n:
        n = tokenizer.model_max_length if 0 < getattr(tokenizer, "model_max_length", 0) < 10**7 else 2048
    return int(n)


class OpenBook:
    """Builds the open-book chats of the base model ``model_name_or_path`` for documents under ``docs``.

    Args:
        docs: the documents folder (or one document) the questions' ``doc`` fields are relative to.
        model_name_or_path: the base model (its tokenizer and context length size the prompt).
        max_new_tokens: the reply budget kept free in the context.
        system_prompt: the evaluation's optional system message (the same for every column).
    """

    def __init__(self, docs: str | Path, model_name_or_path: str, max_new_tokens: int, system_prompt: str | None = None):
        from transformers import AutoTokenizer

        from utils.default_model import resolve_model_path

        self.root = Path(docs)
        if not self.root.exists():
            raise FileNotFoundError(f"--open_book {docs}: no such documents folder or file")
        path = resolve_model_path(model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.context = model_context(path, self.tokenizer)
        self.max_new_tokens = max_new_tokens
        self.system_prompt = system_prompt
        self._texts: dict[Path, str] = {}
        self.truncated: dict[str, dict] = {}  # doc -> {"tokens": its length, "kept": fewest tokens kept}

    def _read(self, path: Path) -> str:
        if path not in self._texts:
            try:
                self._texts[path] = read_document(path, name=str(path))
            except ReadError as exc:
                raise DataFileError(str(exc)) from None
        return self._texts[path]

    def _turns(self, user: str) -> list[dict]:
        return ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else []) + \
            [{"role": "user", "content": user}]

    def chat(self, question: dict) -> list[dict]:
        """The chat that asks ``question`` (a load_qa_file row) with its document in the prompt.

        Raises:
            DataFileError: the question names no document, or one that is missing or unreadable.
        """
        doc = question.get("doc")
        text = self._read(document_path(self.root, doc, question.get("source", "?")))
        empty = self.tokenizer.apply_chat_template(
            self._turns(OPEN_BOOK_PROMPT.format(document="", question=question["question"])),
            add_generation_prompt=True, tokenize=False)
        # a few tokens of slack: the document's tokens can merge differently with the text around it
        budget = self.context - self.max_new_tokens - len(self.tokenizer(empty, add_special_tokens=False)["input_ids"]) \
            - CONTEXT_SLACK
        fitted, total = fit_document(text, self.tokenizer, budget)
        if fitted is not text:
            if doc not in self.truncated:
                logger.warning("open book: %s has %d tokens; only its first %d go into the prompt, so that the "
                               "question and a %d-token reply fit the model's %d-token context", doc, total,
                               budget, self.max_new_tokens, self.context)
                self.truncated[doc] = {"tokens": total, "kept": budget}
            self.truncated[doc]["kept"] = min(self.truncated[doc]["kept"], budget)
        return self._turns(OPEN_BOOK_PROMPT.format(document=fitted.strip(), question=question["question"]))

    def chats(self, questions: list[dict]) -> list[list[dict]]:
        return [self.chat(q) for q in questions]
