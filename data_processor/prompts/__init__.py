"""Prompt templates, one editable file per stage and language: ``prompts/<language>/<stage>.txt``.

File format: lines before the first section header are comments. Sections start with a line
``### system``, ``### user``, ``### assistant`` (the chat, in order: a worked example is a
user/assistant pair before the real request) or ``### repair`` (sent after a reply that could not
be parsed; ``$error`` names what was wrong). Placeholders are ``$name`` / ``${name}``
(:class:`string.Template`), so JSON braces need no escaping; a literal dollar sign is ``$$``.
Pass ``--prompt_dir DIR`` to use your own copies (``DIR/<language>/<stage>.txt``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

PROMPTS_DIR = Path(__file__).resolve().parent
LANGUAGES = ("en", "zh")
_HEADER = re.compile(r"^###\s+(system|user|assistant|repair)\s*$", re.M)


@dataclass(frozen=True)
class PromptTemplate:
    stage: str
    turns: tuple[tuple[str, str], ...]  # (role, text with placeholders)
    repair: str | None
    source: str

    def render(self, **values) -> list[dict]:
        """The chat for one item. Raises ``KeyError`` naming a placeholder that has no value."""
        try:
            return [{"role": role, "content": Template(text).substitute(values)} for role, text in self.turns]
        except KeyError as exc:
            raise KeyError(f"{self.source}: no value for placeholder ${exc.args[0]}") from None

    @property
    def example_text(self) -> str:
        """The text of every turn but the last: the worked example, if the template has one."""
        return "\n".join(text for _, text in self.turns[:-1])

    def repair_message(self, error: str, **values) -> str:
        text = self.repair or "Your reply could not be used ($error). Answer again in the format shown."
        return Template(text).safe_substitute(values, error=error)


def parse_template(text: str, stage: str = "", source: str = "<string>") -> PromptTemplate:
    """Parse the file format described in this module's docstring."""
    parts = _HEADER.split(text)
    turns: list[tuple[str, str]] = []
    repair = None
    for role, body in zip(parts[1::2], parts[2::2]):
        body = body.strip("\n")
        if role == "repair":
            repair = body.strip()
        else:
            turns.append((role, body.strip()))
    if not turns or turns[-1][0] != "user":
        raise ValueError(f"{source}: a prompt template needs at least one '### user' section, last")
    return PromptTemplate(stage, tuple(turns), repair, source)


def load_template(stage: str, language: str = "en", prompt_dir: str | Path | None = None) -> PromptTemplate:
    """Load ``<prompt_dir or built-in>/<language>/<stage>.txt``.

    Raises:
        FileNotFoundError: no template for this stage and language.
    """
    for base in ([Path(prompt_dir)] if prompt_dir else []) + [PROMPTS_DIR]:
        path = base / language / f"{stage}.txt"
        if path.is_file():
            return parse_template(path.read_text(encoding="utf-8"), stage, str(path))
    raise FileNotFoundError(
        f"no prompt template for stage {stage!r} in language {language!r} "
        f"(looked in {prompt_dir + ' and ' if prompt_dir else ''}{PROMPTS_DIR})"
    )


def load_lines(name: str, language: str = "en", prompt_dir: str | Path | None = None) -> list[str]:
    """Non-comment lines of ``<language>/<name>.txt`` (word lists such as fallback roles)."""
    for base in ([Path(prompt_dir)] if prompt_dir else []) + [PROMPTS_DIR]:
        path = base / language / f"{name}.txt"
        if path.is_file():
            return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()
                    if ln.strip() and not ln.lstrip().startswith("#")]
    raise FileNotFoundError(f"no list {name!r} for language {language!r}")
