"""Closed-book knowledge evaluation: did the update teach the documents, and what did it cost?

Asks every question of each QA file (new knowledge) and of a control file (general knowledge, to see
forgetting) to the base model and to each updated model, greedy and batched with the model's chat
template, and scores the replies (evaluation/scoring.py; headline: alias-contains accuracy). With
--open_book DOCS the base model also answers every knowledge question with its document in the prompt
(evaluation/open_book.py): the line closed-book training must cross. Every local model's mean token NLL
on a sample of general text (--general_text, evaluation/general_text.py) measures forgetting that replay
cannot teach to the test.

    python evaluate.py --adapters runs/x/adapter                      # base vs one LoRA adapter
    python evaluate.py --qa_file examples/eval_qa.jsonl,held_out.jsonl --adapters a1 lora2=a2
    python evaluate.py --control_file none --judge_model_type api --judge_model gpt-4o-mini \
        --judge_api_base https://api.openai.com/v1
    python evaluate.py --served updated=http://127.0.0.1:8080/v1,updated   # a served model (llama.cpp, vLLM, ...)
    python evaluate.py --qa_file examples/external_dev/eval_qa.jsonl --open_book examples/external_dev/docs

Writes to --output_dir: results.json (all scores and replies), report.md (summary + flipped
questions), predictions/ (one cached file per model and set; a re-run with the same model,
questions and settings reuses them, so an interrupted evaluation resumes where it stopped) and
general_text/ (each model's NLL on the general text, cached the same way).
"""
from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from evaluation.general_text import change_pct, load_general_text, mean_nll
from evaluation.open_book import OPEN_BOOK_PROMPT, OpenBook
from evaluation.report import BASE_LABEL, OPEN_BOOK_LABEL, build_set_result, render_markdown, results_table
from evaluation.scoring import score_prediction
from generation import BACKENDS, BackendError, LLMBackend, SamplingConfig, build_backend
from utils.data_formats import to_messages
from utils.io_utils import (
    DataFileError,
    atomic_write_json,
    atomic_write_text,
    file_digest,
    fingerprint,
    is_current,
    iter_jsonl,
    mark_current,
    weights_stamp,
)
from utils.logging_utils import setup_logging
from utils.recipe import DEFAULT_RECIPE, apply_defaults, is_none, recipe_section, repo_path, split_recipe_flag

logger = logging.getLogger("evaluate")

DEFAULT_QA_FILE = "examples/eval_qa.jsonl"


@dataclass
class EvalArguments:
    qa_file: list[str] = field(default_factory=list, metadata={
        "action": "extend",
        "help": f"New-knowledge QA file(s): repeat the flag, give several, or a comma list (default "
                f"{DEFAULT_QA_FILE}). Rows are {{'question', 'answers': [primary, alias...]}} or collector "
                "rows with 'conversations' (question = user turn, answer = assistant turn). Each file is "
                "its own set in the table."})
    control_file: str = field(default="examples/control_qa.jsonl", metadata={
        "help": "General-knowledge QA file that measures forgetting; 'none' disables it."})
    open_book: str | None = field(default=None, metadata={
        "help": "Documents folder (or one document) of the knowledge questions: adds the reading baseline, a "
                f"column '{OPEN_BOOK_LABEL}' where the base model answers each knowledge question with the "
                "document its row names ('doc' or 'file_name') in the prompt (evaluation/open_book.py; greedy "
                "and --max_new_tokens like the other columns; a document longer than the model's context is cut, "
                "with a warning). The control set is not asked. 'none' or unset: no such column."})
    general_text: str | None = field(default="examples/general_text.jsonl", metadata={
        "help": "General text and chat prompts with replies (JSONL; evaluation/general_text.py) on which each "
                "local model's mean token NLL is measured, base first: forgetting where replay cannot teach to "
                "the test. 'none' disables it."})
    model_name_or_path: str = field(default="default", metadata={
        "aliases": ["-m"], "help": "Base model: 'default' (embedded SmolLM2-135M-Instruct), a local folder or a hub id."})
    adapters: list[str] = field(default_factory=list, metadata={
        "action": "extend",
        "help": "Updated models to compare with the base: PEFT adapter folders (each merged into its own copy "
                "of the base before generating) or merged model folders. 'LABEL=PATH' names the column; "
                "otherwise the folder name."})
    served: list[str] = field(default_factory=list, metadata={
        "action": "extend",
        "help": "Served models to compare with the base: 'LABEL=URL[,MODEL]' for any OpenAI-compatible chat "
                "completions server (llama.cpp, vLLM, Ollama, a hosted API), asked through the collector's api "
                "backend (its retries, rate limit and key handling; --served_kwargs). MODEL defaults to the "
                "only model the server lists."})
    served_kwargs: str | None = field(default=None, metadata={
        "help": "api backend arguments for the served models as JSON, e.g. "
                "'{\"api_key_env\": \"MY_KEY\", \"requests_per_minute\": 60, \"max_concurrency\": 4}'."})
    batch_size: int = field(default=32, metadata={"help": "Questions per generate() call."})
    max_new_tokens: int = field(default=48, metadata={
        "help": "Reply length cap. Short facts need few tokens; longer replies make alias matches by chance "
                "more likely."})
    cpu_workers: str = field(default="auto", metadata={
        "help": "On a CPU: worker processes of 1 thread each that generate the replies ('auto' = one per core; "
                "'1' = in this process)."})
    dtype: str = field(default="auto", metadata={
        "help": "auto (bfloat16 on a bf16-capable GPU, else float16; on a CPU bfloat16 only with native bf16 "
                "instructions, else float32), bfloat16 or float32."})
    system_prompt: str | None = field(default=None, metadata={
        "help": "Optional system message; by default none, i.e. the chat template's own default, as in "
                "training."})
    max_questions: int = field(default=0, metadata={"help": "Use only the first N questions of each set (0 = all)."})
    output_dir: str = field(default="runs/evaluate", metadata={"help": "Where results.json, report.md go."})
    overwrite: bool = field(default=False, metadata={"help": "Regenerate even when cached predictions match."})
    judge_model_type: str | None = field(default=None, metadata={
        "help": "Optional LLM-as-judge backend: api, hf or vllm (see the generation package)."})
    judge_model: str = field(default="default", metadata={
        "help": "Judge model: the model name for api, a path/hub id for hf and vllm."})
    judge_api_base: str | None = field(default=None, metadata={"help": "Base URL of the judge's API server."})
    judge_kwargs: str | None = field(default=None, metadata={
        "help": "Extra judge backend arguments as JSON, e.g. '{\"api_key_env\": \"MY_KEY\"}'."})
    recipe: str | None = field(default=DEFAULT_RECIPE, metadata={
        "help": "Recipe YAML whose 'evaluate' section sets these defaults ('none' = the built-in ones)."})

    def __post_init__(self) -> None:
        files = [p.strip() for item in self.qa_file for p in item.split(",") if p.strip()]
        self.qa_file = files or [DEFAULT_QA_FILE]
        for name in ("control_file", "open_book", "general_text"):
            if getattr(self, name) is not None and is_none(getattr(self, name)):
                setattr(self, name, None)
        if self.batch_size < 1 or self.max_new_tokens < 1 or self.max_questions < 0:
            raise ValueError("--batch_size and --max_new_tokens must be >= 1, --max_questions >= 0")
        if self.judge_model_type is not None and self.judge_model_type not in BACKENDS:
            raise ValueError(f"--judge_model_type must be one of {', '.join(BACKENDS)}, not {self.judge_model_type!r}")
        for item in self.served:
            label, sep, url = item.partition("=")
            if not sep or not label.strip() or not url.split(",")[0].strip().startswith(("http://", "https://")):
                raise ValueError(f"--served {item!r}: expected LABEL=URL[,MODEL] with an http(s) URL")
        if self.served_kwargs:
            try:
                if not isinstance(json.loads(self.served_kwargs), dict):
                    raise ValueError
            except ValueError:
                raise ValueError(f"--served_kwargs must be a JSON object, not {self.served_kwargs!r}") from None


@dataclass
class ModelSpec:
    """One column of the comparison."""

    label: str
    model: str  # base model name/path, the merged model folder, or the served model's base URL
    adapter: str | None = None  # PEFT adapter applied to the base
    kind: str = "base"  # base | adapter | merged | served | open_book
    api_model: str | None = None  # served: the model name the server is asked for (None: the one it lists)
    docs: str | None = None  # open_book: the documents folder the questions' documents come from


@dataclass
class EvalSet:
    name: str
    kind: str  # knowledge | control
    files: list[str]
    questions: list[dict]


# -- inputs ----------------------------------------------------------------------------------------
def load_qa_file(path: str) -> list[dict]:
    """Read a QA file into ``{"question", "answers", "source"[, "doc"]}`` dicts (``doc`` from the row's
    ``doc`` or ``file_name``: the report then breaks accuracy down per document).

    Accepts eval rows (``question`` + ``answers`` list or string) and collector/chat rows
    (``conversations``/``messages``: the first user turn is the question, the assistant turn after it
    the only answer). Raises :class:`DataFileError` naming ``file:line`` for a row that is neither.
    """
    p = repo_path(path)
    out = []
    for lineno, row in iter_jsonl(p):
        where = f"{p}:{lineno}"
        if "question" in row:
            answers = row.get("answers", row.get("answer"))
            if isinstance(answers, str):
                answers = [answers]
            if not isinstance(row["question"], str) or not row["question"].strip():
                raise DataFileError(f"{where}: 'question' must be a non-empty string")
            if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
                raise DataFileError(f"{where}: 'answers' must be a non-empty list of non-empty strings")
            question = row["question"].strip()
        else:
            try:
                msgs = to_messages(row)
            except ValueError as exc:
                raise DataFileError(f"{where}: neither a question/answers row nor a chat row ({exc})") from None
            users = [i for i, m in enumerate(msgs) if m["role"] == "user"]
            replies = [m for m in msgs[users[0] + 1:] if m["role"] == "assistant"] if users else []
            if not replies:
                raise DataFileError(f"{where}: chat row has no user turn followed by an assistant turn")
            question, answers = msgs[users[0]]["content"].strip(), [replies[0]["content"].strip()]
        doc = row.get("doc") or row.get("file_name")
        out.append({"question": question, "answers": [a.strip() for a in answers], "source": where,
                    **({"doc": str(doc)} if doc else {})})
    if not out:
        raise DataFileError(f"{p}: no questions")
    return out


def load_sets(args: EvalArguments) -> list[EvalSet]:
    """One set per QA file (named after the file) plus the control set."""
    sets: list[EvalSet] = []
    taken = {"control"} if args.control_file else set()
    for f in args.qa_file:
        name, k = Path(f).stem, 2
        while name in taken:
            name, k = f"{Path(f).stem}_{k}", k + 1
        taken.add(name)
        sets.append(EvalSet(name, "knowledge", [str(repo_path(f))], load_qa_file(f)))
    if args.control_file:
        sets.append(EvalSet("control", "control", [str(repo_path(args.control_file))], load_qa_file(args.control_file)))
    if args.max_questions:
        for s in sets:
            s.questions = s.questions[: args.max_questions]
    return sets


def model_specs(args: EvalArguments) -> list[ModelSpec]:
    """The base model first (the reference for deltas), then one spec per --adapters entry.

    Raises:
        FileNotFoundError: for an adapter path that is neither a PEFT adapter nor a model folder.
    """
    specs = [ModelSpec(BASE_LABEL, args.model_name_or_path)]

    def unique(label: str) -> str:
        base_label, k = label, 2
        while label in {s.label for s in specs}:
            label, k = f"{base_label}_{k}", k + 1
        return label

    for item in args.adapters:
        label, sep, path = item.partition("=")
        if not sep:
            label, path = Path(item.rstrip("/")).name, item
        label = unique(label)
        p = Path(path)
        if (p / "adapter_config.json").is_file():
            specs.append(ModelSpec(label, args.model_name_or_path, adapter=str(p), kind="adapter"))
        elif (p / "config.json").is_file():
            specs.append(ModelSpec(label, str(p), kind="merged"))
        else:
            raise FileNotFoundError(f"{path}: neither a PEFT adapter (adapter_config.json) nor a model folder (config.json)")
    for item in args.served:
        label, _, rest = item.partition("=")
        url, _, name = rest.partition(",")
        specs.append(ModelSpec(unique(label.strip()), url.strip().rstrip("/"), kind="served",
                               api_model=name.strip() or None))
    if args.open_book:
        specs.append(ModelSpec(unique(OPEN_BOOK_LABEL), args.model_name_or_path, kind="open_book",
                               docs=str(repo_path(args.open_book))))
    return specs


# -- generation ------------------------------------------------------------------------------------
def prediction_key(spec: ModelSpec, questions: list[dict], args: EvalArguments, chats: list | None = None) -> dict:
    """Everything that determines the replies of one model on one set (the cache's stamp). A served model
    is known by its URL and model name only (greedy, so the same server gives the same replies); after
    restarting a server on other weights, use another label or --overwrite. The open-book column is known
    by its prompts (``chats``: documents included), fingerprinted."""
    if spec.kind == "open_book":
        return {**prediction_key(replace(spec, kind="base"), questions, args), "open_book": fingerprint(chats)}
    if spec.kind == "served":
        return {"served": spec.model, "api_model": spec.api_model, "questions": [q["question"] for q in questions],
                "max_new_tokens": args.max_new_tokens, "system_prompt": args.system_prompt, "temperature": 0.0}
    return {
        "model": spec.model, "adapter": spec.adapter, "weights": weights_stamp(spec.adapter or spec.model),
        "questions": [q["question"] for q in questions], "max_new_tokens": args.max_new_tokens,
        "system_prompt": args.system_prompt, "dtype": args.dtype,
    }


def backend_args(spec: ModelSpec, args: EvalArguments) -> tuple[str, dict]:
    """The generation factory's arguments (:func:`generation.build_backend`) for one column: on the hf
    backend, the base model; a PEFT adapter merged into its own copy of the base (so the updated model
    generates as fast as the base, and the base column never sees a LoRA layer); or a merged model folder.
    A served model gets the api backend on its server, with ``--served_kwargs``."""
    if spec.kind == "served":
        kwargs = json.loads(args.served_kwargs) if args.served_kwargs else {}
        return "api", {"api_base": spec.model, "show_progress": True,
                       **({"api_model": spec.api_model} if spec.api_model else {}), **kwargs}
    common = {"batch_size": args.batch_size, "dtype": args.dtype, "workers": args.cpu_workers, "show_progress": True}
    if spec.kind == "adapter":
        return "hf", {"model_name_or_path": args.model_name_or_path, "adapter_path": spec.adapter,
                      "merge_adapter": True, **common}
    return "hf", {"model_name_or_path": spec.model, **common}


def column_backend(spec: ModelSpec, args: EvalArguments) -> LLMBackend:
    """The (unloaded, except to ask a server for its model) generator of one column, from the generation
    factory. A served model named by its URL alone is the server's only model (``GET /models``); the name
    is not written into ``spec``, so the cache key stays "this URL's only model" and a re-run reuses the
    replies without the server."""
    model_type, kwargs = backend_args(spec, args)
    backend = build_backend(model_type, **kwargs)
    if spec.kind == "served" and not spec.api_model:
        try:
            backend.load()
            ids = [m.id for m in backend.client.models.list()]
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection refused, HTTP errors, ...: all say the same
            backend.close()
            raise BackendError(f"--served {spec.label}={spec.model}: cannot list its models ({type(exc).__name__}: "
                               f"{exc}); is the server running?") from None
        if len(ids) != 1:
            backend.close()
            raise BackendError(f"--served {spec.label}={spec.model}: the server lists {ids or 'no models'}; "
                               f"name one: {spec.label}={spec.model},MODEL")
        backend.api_model = ids[0]
        logger.info("%s: %s serves model %r", spec.label, spec.model, ids[0])
    return backend


def open_book_chats(args: EvalArguments, sets: list[EvalSet]) -> tuple[dict[str, list], dict | None]:
    """The open-book chats of every knowledge set, built before anything is generated (so a question whose
    document is missing stops the run at once), and results.json's ``open_book`` block (prompt, documents,
    context, the documents that were cut); ``({}, None)`` without --open_book."""
    if not args.open_book:
        return {}, None
    book = OpenBook(repo_path(args.open_book), args.model_name_or_path, args.max_new_tokens, args.system_prompt)
    chats = {s.name: book.chats(s.questions) for s in sets if s.kind == "knowledge"}
    return chats, {"docs": str(book.root), "prompt": OPEN_BOOK_PROMPT, "context_tokens": book.context,
                   "truncated": book.truncated}


def collect_predictions(args: EvalArguments, specs: list[ModelSpec], sets: list[EvalSet], out_dir: Path,
                        book_chats: dict[str, list] | None = None) -> dict:
    """``{set name: {label: [reply, ...]}}``, generating only what is not cached in ``out_dir/predictions``.
    The open-book column asks ``book_chats`` (:func:`open_book_chats`) of the knowledge sets only."""
    # The open-book column decodes exactly as the closed-book ones (greedy, the same reply cap), so the only
    # difference between it and the base column is the document in the prompt.
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=args.max_new_tokens)
    preds: dict[str, dict[str, list[str]]] = {s.name: {} for s in sets}
    for spec in specs:
        backend = None  # loaded on the first set that is not cached, used for the others, then freed
        try:
            for s in sets:
                if spec.kind == "open_book" and s.name not in (book_chats or {}):
                    continue  # general knowledge (the control set) has no document to read
                cache = out_dir / "predictions" / f"{spec.label}__{s.name}.json"
                if spec.kind == "open_book":
                    chats = book_chats[s.name]
                else:
                    chats = [([{"role": "system", "content": args.system_prompt}] if args.system_prompt else [])
                             + [{"role": "user", "content": q["question"]}] for q in s.questions]
                key = prediction_key(spec, s.questions, args, chats)
                if not args.overwrite and is_current(cache, key):
                    logger.info("%s on %s: reusing %s", spec.label, s.name, cache)
                    preds[s.name][spec.label] = json.loads(cache.read_text(encoding="utf-8"))["predictions"]
                    continue
                logger.info("%s on %s: asking %d questions", spec.label, s.name, len(s.questions))
                backend = backend or column_backend(spec, args)
                replies = backend.generate(chats, sampling, desc=f"{spec.label}/{s.name}")
                atomic_write_json(cache, {"label": spec.label, "set": s.name, "predictions": replies})
                mark_current(cache, key)
                preds[s.name][spec.label] = replies
        finally:
            if backend is not None:
                backend.close()
    return preds


def general_text_nll(args: EvalArguments, specs: list[ModelSpec], out_dir: Path, rows: list[dict]) -> dict:
    """results.json's ``general_text`` block: each local model's mean token NLL on ``rows`` (the
    ``--general_text`` file) and its relative change against the base model, in percent (served models give
    no log-probabilities of given text here, and the open-book column is the base model). Cached per model
    like the replies."""
    path = repo_path(args.general_text)
    block = {"file": str(path), "rows": len(rows), "tokens": None, "nll": {}, "change_pct": {}}
    for spec in specs:
        if spec.kind in ("served", "open_book"):
            continue
        cache = out_dir / "general_text" / f"{spec.label}.json"
        key = {"model": spec.model, "adapter": spec.adapter, "weights": weights_stamp(spec.adapter or spec.model),
               "text": file_digest(path), "system_prompt": args.system_prompt, "dtype": args.dtype}
        if not args.overwrite and is_current(cache, key):
            result = json.loads(cache.read_text(encoding="utf-8"))
        else:
            backend = column_backend(spec, args)
            try:
                backend.load()  # in this process: one forward pass per row needs no worker pool
                result = mean_nll(backend.model, backend.tokenizer, rows, args.system_prompt)
            finally:
                backend.close()
            atomic_write_json(cache, result)
            mark_current(cache, key)
        logger.info("%s: mean token NLL %.4f on %d tokens of %s", spec.label, result["nll"], result["tokens"], path)
        block["tokens"] = result["tokens"]
        block["nll"][spec.label] = result["nll"]
    ref = block["nll"].get(BASE_LABEL)
    block["change_pct"] = {label: change_pct(v, ref) for label, v in block["nll"].items() if label != BASE_LABEL}
    return block


# -- optional LLM judge ----------------------------------------------------------------------------
JUDGE_PROMPT = (
    "You grade answers to quiz questions. Question: {question}\n"
    "Accepted answers: {answers}\n"
    "Student's reply: {reply}\n\n"
    "Does the reply give an accepted answer (wording may differ; extra text is fine, a wrong or "
    "contradictory answer is not)? Reply with one word: CORRECT or INCORRECT."
)


def parse_verdict(text: str) -> bool | None:
    """CORRECT -> True, INCORRECT -> False, anything else -> None (counted as unjudged)."""
    words = "".join(ch if ch.isalpha() else " " for ch in text.upper()).split()
    for w in words[:5]:
        if w in ("INCORRECT", "WRONG", "NO"):
            return False
        if w in ("CORRECT", "RIGHT", "YES"):
            return True
    return None


def build_judge(args: EvalArguments):
    """The judge backend, from the generation factory."""
    kwargs = json.loads(args.judge_kwargs) if args.judge_kwargs else {}
    if args.judge_model_type == "api":
        kwargs.setdefault("api_model", args.judge_model)
        if args.judge_api_base:
            kwargs.setdefault("api_base", args.judge_api_base)
    else:
        kwargs.setdefault("model_name_or_path", args.judge_model)
    return build_backend(args.judge_model_type, **kwargs)


def judge_predictions(args: EvalArguments, sets: list[EvalSet], preds: dict) -> dict:
    """``{set: {label: [True/False/None, ...]}}`` from one batched judge call over everything."""
    judge = build_judge(args)
    keys, chats = [], []
    for s in sets:
        for label, replies in preds[s.name].items():
            for i, (q, r) in enumerate(zip(s.questions, replies)):
                keys.append((s.name, label, i))
                chats.append([{"role": "user", "content": JUDGE_PROMPT.format(
                    question=q["question"], answers=" | ".join(q["answers"]), reply=r or "(empty)")}])
    verdicts: dict = {s.name: {label: [None] * len(s.questions) for label in preds[s.name]} for s in sets}
    try:
        outs = judge.generate(chats, SamplingConfig(temperature=0.0, max_new_tokens=8))
    except BackendError as exc:
        logger.error("judge failed, reporting without judge scores: %s", exc)
        return verdicts
    finally:
        judge.close()
    for (name, label, i), out in zip(keys, outs):
        verdicts[name][label][i] = parse_verdict(out)
    unparsed = sum(v is None for d in verdicts.values() for lst in d.values() for v in lst)
    if unparsed:
        logger.warning("judge: %d of %d verdicts unreadable (left out of the judge score)", unparsed, len(keys))
    return verdicts


# -- main ------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> EvalArguments:
    """Flags into :class:`EvalArguments`, with the recipe's ``evaluate`` section as defaults.

    Raises ``ValueError`` (incl. :class:`~utils.recipe.RecipeError`) for invalid values.
    """
    from transformers import HfArgumentParser

    recipe, rest = split_recipe_flag(sys.argv[1:] if argv is None else list(argv))
    parser = HfArgumentParser(EvalArguments, description=__doc__, epilog=(
        "Entry points: bash shells/evaluate.sh | python -m evaluation (or python evaluate.py) | ku-evaluate"))
    apply_defaults(parser, recipe_section(recipe, "evaluate"), f"{recipe} (section evaluate)")
    (args,) = parser.parse_args_into_dataclasses(args=rest)
    args.recipe = recipe
    return args


def run(args: EvalArguments) -> dict:
    """Evaluate, write results.json + report.md into ``args.output_dir`` and return the results dict."""
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sets = load_sets(args)
    specs = model_specs(args)
    logger.info("Sets: %s; models: %s", ", ".join(f"{s.name} ({len(s.questions)})" for s in sets),
                ", ".join(s.label for s in specs))
    # every input is read before the first model loads, so a bad row stops the run at once
    book_chats, book = open_book_chats(args, sets)
    general_rows = load_general_text(repo_path(args.general_text)) if args.general_text else None
    preds = collect_predictions(args, specs, sets, out_dir, book_chats)
    verdicts = judge_predictions(args, sets, preds) if args.judge_model_type else None
    general = general_text_nll(args, specs, out_dir, general_rows) if general_rows else None
    results = {"headline_metric": "contains", "models": [asdict(s) for s in specs], "sets": {}, "config": asdict(args)}
    if book is not None:
        results["open_book"] = book
    if general is not None:
        results["general_text"] = general
    for s in sets:
        scores = {}
        for label, replies in preds[s.name].items():
            scores[label] = [score_prediction(r, q["answers"]) for q, r in zip(s.questions, replies)]
            if verdicts is not None:
                scores[label] = [replace(sc, judge=v) for sc, v in zip(scores[label], verdicts[s.name][label])]
        results["sets"][s.name] = build_set_result(s.kind, s.files, s.questions, preds[s.name], scores)
    table = results_table(results)
    atomic_write_json(out_dir / "results.json", results)
    atomic_write_text(out_dir / "report.md", render_markdown(results, table))
    print(table)
    print(f"\nReport: {out_dir / 'report.md'}\nScores: {out_dir / 'results.json'}")
    return results


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = parse_args(argv)
    except ValueError as exc:  # __post_init__ validation
        logger.error("%s", exc)
        return 2
    try:
        run(args)
    except (DataFileError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        return 2
    except BackendError as exc:  # a served model that cannot be reached or keeps failing
        logger.error("%s", exc)
        return 1
    return 0
