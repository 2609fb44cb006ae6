"""The collection run: read -> chunk -> theme -> facts -> qa -> roles -> diversify -> rule rows -> write.

This module only orchestrates: it reads the settings, builds the backend and the cache, sends each
wave of chunks through the stages (data_processor/stages, where each stage's logic lives, the rows,
anchoring and the held-out choice included) and writes the run summary.

Chunks go through the stages in waves (``--chunks_per_wave``); within a wave every stage sends all
of its prompts to the backend at once. Each reply is cached as it arrives and each row is written
as a whole line, so an interrupted run resumes where it stopped when given the same command. A run
of several waves starts with a small one and logs the projected time of the rest from it.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

from generation import BackendError, LLMBackend, build_backend
from utils.io_utils import atomic_write_json

from .cache import CachedLLM, ResultCache
from .config import CollectConfig, parse_args
from .parsing import proper_names
from .prompts import load_lines, load_template
from .stages import StageResult
from .stages import step3_theme as theme
from .stages import step4_facts as facts
from .stages import step5_qa as qa
from .stages import step6_roles as roles
from .stages import step7_diversify as diversify
from .stages import step8_rule_rows as rule_rows
from .stages.step1_read import ReadError, read_folder
from .stages.step2_chunk import Chunk, HFTokenCounter, TokenCounter, WordCounter, chunk_text
from .stages.step9_write import OutputSet, write_rows

logger = logging.getLogger(__name__)

def stage_sampling(cfg: CollectConfig) -> dict[str, dict]:
    """Per-stage sampling changes: token caps (replies are short) and the rewrite temperature."""
    return {
        theme.STAGE: {"max_new_tokens": theme.MAX_NEW_TOKENS},
        facts.STAGE: {"max_new_tokens": cfg.chunk_size_by_token + 64},  # about a copy of the chunk
        qa.STAGE: {"max_new_tokens": qa.MAX_NEW_TOKENS},
        roles.STAGE: {"max_new_tokens": roles.MAX_NEW_TOKENS},
        diversify.STAGE: {"max_new_tokens": diversify.MAX_NEW_TOKENS, "temperature": cfg.rewrite_temperature},
    }


class CollectionError(RuntimeError):
    """Nothing can be done (no documents, bad settings): a clean non-zero exit, no traceback."""


@dataclass
class RunSummary:
    """What a collection run did. ``stages`` holds each stage's counters (see data_processor/stages)."""

    status: str = "running"
    files: int = 0
    files_skipped: list = field(default_factory=list)
    files_skipped_by_reason: dict = field(default_factory=dict)  # reason (step1_read's categories) -> files
    chunks: int = 0
    stages: dict = field(default_factory=dict)  # stage name -> {counter: count}
    qa_written: int = 0
    eval_written: int = 0
    duplicates: int = 0
    rows_already_there: int = 0
    llm_calls: int = 0
    cached_replies_used: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    output: str = ""
    eval_output: str | None = None
    cache: str = ""
    documents: list = field(default_factory=list)
    docs_with_rows: dict = field(default_factory=dict)  # training rows per document, whole file

    def add(self, stage: str, result: StageResult):
        """Add a stage's counters to the summary; returns the stage's items."""
        mine = self.stages.setdefault(stage, {})
        for name, n in result.counters.items():
            mine[name] = mine.get(name, 0) + int(n)
        return result.items

    @property
    def parse_failures(self) -> int:
        return sum(c.get("parse_failures", 0) for c in self.stages.values())


def build_counter(cfg: CollectConfig) -> TokenCounter:
    """The tokenizer that measures chunks (see ``--tokenizer_name_or_path``)."""
    name = cfg.tokenizer_name_or_path
    if name == "words":
        return WordCounter()
    from transformers import AutoTokenizer

    from utils.default_model import resolve_model_path

    if name == "auto":
        name = "default" if cfg.model_type == "api" else cfg.model_name_or_path
    return HFTokenCounter(AutoTokenizer.from_pretrained(resolve_model_path(name)))


FIRST_WAVE_CHUNKS = 16  # a run of several waves starts with a wave this small: its time projects the rest


def _waves(chunks: list[Chunk], size: int) -> list[list[Chunk]]:
    """Waves of ``size`` chunks (0: one wave). With more than one wave, the first has at most
    :data:`FIRST_WAVE_CHUNKS`, so the projected time of the run is known after minutes, not a whole wave."""
    if size <= 0 or len(chunks) <= size:
        return [chunks]
    first = min(size, FIRST_WAVE_CHUNKS)
    return [chunks[:first]] + [chunks[i : i + size] for i in range(first, len(chunks), size)]


def run_collection(cfg: CollectConfig, backend: LLMBackend | None = None, counter: TokenCounter | None = None) -> RunSummary:
    """Run the whole collection; returns the summary (also saved beside the output).

    Args:
        cfg: settings.
        backend: an already built backend (tests); default: built from ``cfg``.
        counter: token counter for chunking (tests); default: see :func:`build_counter`.
    Raises:
        CollectionError: no readable document, or bad prompt templates.
        BackendError: the generator failed for good (completed replies stay cached).
        KeyboardInterrupt: Ctrl+C (completed replies and rows stay; re-run to resume).
    """
    t0 = time.time()
    summary = RunSummary(output=str(cfg.output_path), eval_output=str(cfg.eval_path) if cfg.eval_path else None,
                         cache=str(cfg.cache_path))
    read = read_folder(cfg.data_path, cfg.file_type, cfg.num_shards, cfg.shard_index)
    docs, problems = read.docs, read.problems
    for msg in problems:
        logger.warning("skipped: %s", msg)
    summary.files, summary.files_skipped = len(docs), problems
    summary.files_skipped_by_reason = read.skipped_by_reason
    summary.documents = [d.name for d in docs]
    if not docs:
        raise CollectionError(
            f"no readable documents in {cfg.data_path} (file_type={cfg.file_type}"
            + (f", shard {cfg.shard_index} of {cfg.num_shards}" if cfg.num_shards > 1 else "") + ")"
            + (f"; skipped: {'; '.join(problems[:5])}" if problems else "")
        )
    try:
        templates = {s: load_template(s, cfg.language, cfg.prompt_dir) for s in ("theme", "facts", "qa", "roles", "diversify")}
        angles = load_lines("qa_angles", cfg.language, cfg.prompt_dir)
        fallback_roles = load_lines("roles_fallback", cfg.language, cfg.prompt_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise CollectionError(str(exc)) from exc

    counter = counter or build_counter(cfg)
    chunks = [c for d in docs
              for c in chunk_text(d.text, counter, cfg.chunk_size_by_token, cfg.chunk_overlap_tokens, d.name, d.pages)]
    summary.chunks = len(chunks)
    logger.info("%d documents -> %d chunks of <= %d tokens", len(docs), len(chunks), cfg.chunk_size_by_token)

    if cfg.overwrite:
        for p in (cfg.output_path, cfg.eval_path, cfg.summary_path):
            if p is not None and p.exists():
                p.unlink()
    backend = backend or build_backend(cfg.model_type, **cfg.backend_kwargs())
    cache = ResultCache(cfg.cache_path)
    llm = CachedLLM(backend, cache, cfg.sampling(), stage_sampling(cfg))
    out = OutputSet(cfg.output_path, cfg.eval_path)
    summary.rows_already_there = len(out.train.rows) + (len(out.eval.rows) if out.eval else 0)
    if summary.rows_already_there:
        logger.info("resuming: %d rows already in %s; cached replies are reused", summary.rows_already_there, cfg.output_path)
    first_chunk = {}
    for c in chunks:
        first_chunk.setdefault(c.doc_name, c)
    waves = _waves(chunks, cfg.chunks_per_wave)
    projected = False
    try:
        for w, wave in enumerate(waves):
            if cfg.chunks_per_wave and len(chunks) > cfg.chunks_per_wave:
                logger.info("wave %d: chunks %s .. %s", w + 1, wave[0].chunk_id, wave[-1].chunk_id)
            t_wave, calls = time.time(), llm.calls
            _run_wave(cfg, llm, wave, first_chunk, templates, angles, fallback_roles, out, summary)
            left = sum(len(x) for x in waves[w + 1:])
            # The first wave that asked the generator (not one answered from the cache of an earlier run) sets
            # the pace; the rest of the run is projected from it.
            if not projected and left and llm.calls > calls:
                projected = True
                logger.info("%s", projection_line(time.time() - t_wave, len(wave), left))
        summary.status = "complete"
    except KeyboardInterrupt:
        summary.status = "interrupted"
        raise
    except BaseException:
        summary.status = "failed"
        raise
    finally:
        summary.qa_written = out.written["train"]
        summary.eval_written = out.written["eval"]
        summary.duplicates = out.written["duplicates"]
        summary.llm_calls = llm.calls
        summary.cached_replies_used = llm.cache_hits
        summary.prompt_tokens = backend.stats.prompt_tokens
        summary.completion_tokens = backend.stats.completion_tokens
        summary.seconds = round(time.time() - t0, 1)
        for row in out.train.rows:
            name = row.get("file_name", "")
            summary.docs_with_rows[name] = summary.docs_with_rows.get(name, 0) + 1
        out.close()
        cache.close()
        backend.close()
        atomic_write_json(cfg.summary_path, {"summary": asdict(summary), "config": cfg.public_dict()})
    return summary


def _run_wave(cfg, llm, wave, first_chunk, templates, angles, fallback_roles, out, summary) -> None:
    # Theme: the wave's chunks, plus each document's first chunk (its theme names the document
    # for the roles stage; a cache hit when it was done in an earlier wave).
    docs_in_wave = list(dict.fromkeys(c.doc_name for c in wave))
    extra = [first_chunk[d] for d in docs_in_wave if first_chunk[d] not in wave]
    themes = summary.add(theme.STAGE, theme.run(llm, wave + extra, templates["theme"], cfg.max_repairs))
    theme_of = {c.chunk_id: t for c, t in zip(wave + extra, themes)}
    doc_theme = {d: theme_of[first_chunk[d].chunk_id] for d in docs_in_wave}

    titles = {d: rule_rows.document_title(first_chunk[d].text, d) for d in docs_in_wave}
    facts_per_chunk = summary.add(facts.STAGE, facts.run(
        llm, wave, themes[: len(wave)], [doc_theme[c.doc_name] for c in wave], templates["facts"],
        max_repairs=cfg.max_repairs, max_facts=cfg.max_facts_per_chunk, grounding_threshold=cfg.grounding_threshold,
        add_uncovered_sentences=cfg.add_uncovered_sentences,
        entities={d: rule_rows.document_entity(first_chunk[d].text, d) for d in docs_in_wave} if cfg.resolve_pronouns else None,
    ))
    all_facts = [f for fs in facts_per_chunk for f in fs]
    # The title goes with the chunk into the grounding checks: a self-contained fact names the document's
    # subject, which a later chunk may only call "it".
    chunk_text_by_id = {c.chunk_id: f"{c.text}\n{titles[c.doc_name]}" if cfg.resolve_pronouns else c.text for c in wave}
    pairs = summary.add(qa.STAGE, qa.run(
        llm, all_facts, chunk_text_by_id, templates["qa"], angles, amount=cfg.qa_amount_per_fact,
        max_repairs=cfg.max_repairs, grounding_threshold=cfg.grounding_threshold,
        answer_with_fact=cfg.answer_with_fact,
    ))
    personas = cfg.personas_per_document if pairs else 0  # no question to rewrite: no persona to ask for
    roles_by_doc = summary.add(roles.STAGE, roles.run(llm, doc_theme, templates["roles"], fallback_roles,
                                                      amount=personas, max_repairs=cfg.max_repairs))
    rewrites = summary.add(diversify.STAGE, diversify.run(
        llm, pairs, roles_by_doc, templates["diversify"], max_repairs=cfg.max_repairs, chunk_text=chunk_text_by_id,
        grounding_threshold=cfg.grounding_threshold))
    names = {c.chunk_id: proper_names(c.text) for c in wave}
    rule_items = summary.add(rule_rows.STAGE, rule_rows.run(
        all_facts, titles, names, cloze_per_fact=cfg.cloze_per_fact, wh_spans_per_fact=cfg.wh_spans_per_fact,
        wh_phrasings=cfg.wh_phrasings, wh_keywords=cfg.wh_keywords, alias_rows=cfg.alias_rows,
        statement_rows=cfg.statement_rows, relation_paraphrases=cfg.relation_paraphrases,
        cause_questions=cfg.cause_questions, seed=cfg.seed,
        sources=chunk_text_by_id))
    if cfg.anchor_questions:
        pairs, rewrites = qa.anchor_questions(pairs, rewrites, wave, titles)
    write_rows(out, pairs, rewrites, rule_items, fact_answers=cfg.fact_answers, seed=cfg.seed,
               eval_fraction=cfg.eval_fraction)


def projection_line(wave_seconds: float, wave_chunks: int, chunks_left: int) -> str:
    """The projected time of the rest of a run, from the time one wave of ``wave_chunks`` chunks took."""
    seconds = wave_seconds / max(wave_chunks, 1) * chunks_left
    when = f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
    return (f"projected time: about {when} more for the other {chunks_left} chunks "
            f"(the first wave, {wave_chunks} chunks, took {wave_seconds:.0f} s)")


def print_summary(summary: RunSummary, path) -> None:
    s = asdict(summary)
    stage_lines = [f"{name:<17} " + ", ".join(f"{k} {v}" for k, v in counters.items())
                   for name, counters in s["stages"].items()]
    lines = [
        f"files read        {s['files']} ({len(s['files_skipped'])} skipped)",
        *(["skipped by reason " + ", ".join(f"{k} {v}" for k, v in s["files_skipped_by_reason"].items())]
          if s["files_skipped_by_reason"] else []),
        f"chunks            {s['chunks']}",
        *stage_lines,
        f"rows written      {s['qa_written']} train, {s['eval_written']} eval "
        f"({s['duplicates']} duplicates, {s['rows_already_there']} already there)",
        f"LLM calls         {s['llm_calls']} ({s['cached_replies_used']} replies from cache, "
        f"{summary.parse_failures} unusable after repairs)",
        f"tokens            {s['prompt_tokens']} prompt, {s['completion_tokens']} completion",
        f"seconds           {s['seconds']}",
        f"output            {s['output']}" + (f"  eval: {s['eval_output']}" if s["eval_output"] else ""),
        f"summary           {path}",
    ]
    print("\n".join(["== collection summary =="] + lines), flush=True)


def main(argv: list[str] | None = None, backend: LLMBackend | None = None, counter: TokenCounter | None = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 generator failed, 2 bad input, 130 Ctrl+C).

    ``backend`` / ``counter`` replace the ones built from the flags (tests).
    """
    from utils.logging_utils import setup_logging

    # Here rather than in __main__.py, so that ku-collect (which calls this function) gets it too: the hf
    # backend's worker processes are forked after the tokenizer ran, and tokenizers warns on every fork.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        cfg = parse_args(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(getattr(logging, cfg.log_level.upper(), logging.INFO))
    resume_hint = f"run the same command again to resume (replies are cached in {cfg.cache_path})"
    # SIGTERM (e.g. from a job scheduler) stops like Ctrl+C: finished work is kept. SIGINT is set too:
    # a process started in the background by a non-interactive shell inherits SIGINT *ignored*, and
    # Python then never raises KeyboardInterrupt, so Ctrl+C / `kill -INT` would be silently lost.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        summary = run_collection(cfg, backend=backend, counter=counter)
    except (CollectionError, ReadError) as exc:
        logger.error("%s", exc)
        return 2
    except BackendError as exc:
        logger.error("the generator failed: %s. Finished work is kept; %s.", exc, resume_hint)
        return 1
    except KeyboardInterrupt:
        logger.warning("interrupted. Rows written so far are in %s; %s.", cfg.output_path, resume_hint)
        return 130
    except OSError as exc:  # an output folder that cannot be written, a full disk
        logger.error("cannot write %s: %s", exc.filename or cfg.output_path, exc.strerror or exc)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print_summary(summary, cfg.summary_path)
    missing = [d for d in summary.documents if d not in summary.docs_with_rows]
    if missing:
        logger.warning("no rows from %d document(s): %s. A stronger generator usually helps "
                       "(--model_type api or vllm).", len(missing), ", ".join(missing))
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
