"""A deterministic stand-in for an LLM, for pipeline tests: it answers each stage's prompt from the
prompt's own text, so the pipeline's plumbing (batching, parsing, caching, resume, writing) is
tested without a model. Also runnable as a script: the collector's CLI with this backend, for the
kill/restart tests (``python tests/data_processor/scripted.py --delay 0.01 -- <collector flags>``).
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data_processor.backends.base import BackendError, LLMBackend  # noqa: E402
from data_processor.chunking import sentence_spans  # noqa: E402


def prompt_hash(chat) -> str:
    return hashlib.sha256(repr(chat).encode()).hexdigest()[:16]


class ScriptedBackend(LLMBackend):
    """Replies like a well-behaved generator.

    Args:
        garbage_every: every n-th prompt (by arrival) gets an unusable reply first.
        fail_after: raise :class:`BackendError` after this many replies (to test resume).
        raise_interrupt_after: raise ``KeyboardInterrupt`` after this many replies.
        delay: seconds per reply (kill tests).
        call_log: append each prompt's hash to this file (fsync-ed) to count calls across processes.
        invent_answers: answer every other QA prompt with a made-up fact (grounding tests).
    """

    def __init__(self, *, garbage_every: int = 0, fail_after: int | None = None, raise_interrupt_after: int | None = None,
                 delay: float = 0.0, call_log: str | None = None, invent_answers: bool = False) -> None:
        super().__init__()
        self.model_id = "scripted"
        self.garbage_every = garbage_every
        self.fail_after = fail_after
        self.raise_interrupt_after = raise_interrupt_after
        self.delay = delay
        self.call_log = call_log
        self.invent_answers = invent_answers
        self.prompts: list = []  # every chat received, in order
        self.batches: list[tuple[str, int]] = []  # (desc, size) per generate call

    # -- the "model" -------------------------------------------------------------------------------
    def reply(self, chat) -> str:
        user = chat[-1]["content"]
        if len(chat) >= 3 and chat[-2]["role"] == "assistant" and "did not work" in user:
            # a repair round: answer properly this time, from the original request
            user = chat[-3]["content"]
        text = user.split("Text:", 1)[-1].rsplit("\n\n", 1)[0].strip() if "Text:" in user else ""
        if "Give this text a title" in user:
            words = re.findall(r"[A-Z][a-z]+", text)
            return (" ".join(words[:3]) or "General") + "\n"
        if "List the facts" in user:
            sents = [text[s:e].strip() for s, e, _ in sentence_spans(text)]
            return "Here are the facts:\n" + "\n".join(f"- {s}" for s in sents if s)
        if "Write one question" in user:
            fact = user.split("Fact:", 1)[1].strip()
            extra = " (again)" if "different words" in user else ""
            if self.invent_answers and int(prompt_hash(fact), 16) % 2:
                return f"Q: What is said about {fact[:40]}?{extra}\nA: Zyxxon Qwerty invented it in 1066."
            return f"Q: What is true about {fact[:50].rstrip('.')}?{extra}\nA: {fact}"
        if user.startswith("Name "):
            n = int(re.search(r"Name (\d+)", user).group(1))
            return "\n".join(f"a person of kind {k}" for k in range(n))
        if user.startswith("Rewrite the question the way"):
            role = re.search(r"the way (.*?) would ask", user).group(1)
            q = user.split("Question:", 1)[1].strip()
            return f"As {role}, I wonder: {q}"
        return "I do not understand."

    def generate(self, chats, sampling, *, on_result=None, desc="generate"):
        self.batches.append((desc, len(chats)))
        out = []
        for i, chat in enumerate(chats):
            if self.fail_after is not None and len(self.prompts) >= self.fail_after:
                raise BackendError(f"stage '{desc}', item {i}: scripted failure")
            if self.raise_interrupt_after is not None and len(self.prompts) >= self.raise_interrupt_after:
                raise KeyboardInterrupt
            self.prompts.append(chat)
            if self.delay:
                time.sleep(self.delay)
            is_repair = len(chat) >= 3 and chat[-2]["role"] == "assistant" and "did not work" in chat[-1]["content"]
            if self.garbage_every and len(self.prompts) % self.garbage_every == 0 and not is_repair:
                text = "```\n{{{ garbage ]]\n"
            else:
                text = self.reply(chat)
            if self.call_log:
                with open(self.call_log, "a") as fh:
                    fh.write(prompt_hash(chat) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            self.stats.calls += 1
            self.stats.prompt_tokens += sum(len(m["content"].split()) for m in chat)
            self.stats.completion_tokens += len(text.split())
            out.append(text)
            if on_result is not None:
                on_result(i, text)
        return out


def main(argv: list[str]) -> int:
    import argparse

    from data_processor.chunking import WordCounter
    from data_processor.pipeline import main as collector_main

    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--call_log", default=None)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    backend = ScriptedBackend(delay=args.delay, call_log=args.call_log)
    return collector_main(rest, backend=backend, counter=WordCounter())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
