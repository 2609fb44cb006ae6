"""A deterministic stand-in for an LLM, for pipeline tests: it answers each stage's prompt from the
values the prompt was rendered with, so the pipeline's plumbing (batching, parsing, caching, resume,
writing) is tested without a model. It dispatches on the stage the pipeline names (``desc``) and reads
the values back through the stage's own template, so rewording a prompt file changes no test data.
Also runnable as a script: the collector's CLI with this backend, for the kill/restart tests
(``python tests/data_processor/scripted.py --delay 0.01 -- <collector flags>``).
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import time
from string import Template

from generation.base import BackendError, LLMBackend
from data_processor.prompts import load_lines, load_template
from data_processor.stages.step2_chunk import sentence_spans


@functools.cache
def _request_pattern(stage: str) -> re.Pattern:
    """A regex that reads the placeholder values back out of the stage's rendered request."""
    text = load_template(stage).turns[-1][1]
    out, seen, pos = [], set(), 0
    for m in Template.pattern.finditer(text):
        out.append(re.escape(text[pos:m.start()]))
        name = m.group("named") or m.group("braced")
        if name is None:  # "$$"
            out.append(re.escape("$"))
        elif name in seen:
            out.append(f"(?P={name})")
        else:
            seen.add(name)
            out.append(f"(?P<{name}>.*?)")
        pos = m.end()
    out.append(re.escape(text[pos:]))
    return re.compile("^" + "".join(out) + "$", re.S)


def request_values(stage: str, user_message: str) -> dict[str, str]:
    """The values ``user_message`` was rendered with from the ``stage`` template (``{}`` if it was not)."""
    if stage not in STAGES:
        return {}
    m = _request_pattern(stage).match(user_message)
    return m.groupdict() if m else {}


def prompt_hash(chat) -> str:
    return hashlib.sha256(repr(chat).encode()).hexdigest()[:16]


_ANGLES = frozenset(load_lines("qa_angles"))
STAGES = ("theme", "facts", "qa", "roles", "diversify")


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
    def reply_to_chat(self, chat) -> str:
        """The reply when the stage is not named (a request that reached the fake OpenAI server): the
        stage is the one whose template the request was rendered from."""
        for repair, turn in ((False, -1), (True, -3)):  # a repair round: the request, a reply, the repair message
            if len(chat) >= -turn:
                stage = next((s for s in STAGES if request_values(s, chat[turn]["content"])), None)
                if stage:
                    return self.reply(chat, f"{stage}-repair1" if repair else stage)
        return "I do not understand."

    def reply(self, chat, desc: str) -> str:
        stage, _, repair = desc.partition("-repair")
        # a repair round: answer properly this time, from the original request
        v = request_values(stage, chat[-3]["content"] if repair else chat[-1]["content"])
        if stage == "theme":
            words = re.findall(r"[A-Z][a-z]+", v.get("text", ""))
            return (" ".join(words[:3]) or "General") + "\n"
        if stage == "facts":
            text = v.get("text", "")
            sents = [text[s:e].strip() for s, e, _ in sentence_spans(text)]
            return "Here are the facts:\n" + "\n".join(f"- {s}" for s in sents if s)
        if stage == "qa":
            fact = v.get("fact", "").strip()
            extra = " (again)" if v.get("angle", "").strip() in _ANGLES else ""
            if self.invent_answers and int(prompt_hash(fact), 16) % 2:
                return f"Q: What is said about {fact[:40]}?{extra}\nA: Zyxxon Qwerty invented it in 1066."
            return f"Q: What is true about {fact[:50].rstrip('.')}?{extra}\nA: {fact}"
        if stage == "roles":
            return "\n".join(f"a person of kind {k}" for k in range(int(v.get("n", "1"))))
        if stage == "diversify":
            return f"As {v.get('role', 'someone')}, I wonder: {v.get('question', '').strip()}"
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
            if self.garbage_every and len(self.prompts) % self.garbage_every == 0 and "-repair" not in desc:
                text = "```\n{{{ garbage ]]\n"
            else:
                text = self.reply(chat, desc)
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

    from data_processor.pipeline import main as collector_main
    from data_processor.stages.step2_chunk import WordCounter

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
