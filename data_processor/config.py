"""Every collection setting, with its default and help text, in one dataclass.

``python -m data_processor --help`` (or ``bash shells/collect_data.sh --help``) prints them all.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from generation import BACKENDS
from generation.base import SamplingConfig
from utils.recipe import DEFAULT_RECIPE, apply_defaults, recipe_section, split_recipe_flag

from .prompts import LANGUAGES
from .stages.step1_read import FILE_TYPES


@dataclass
class CollectConfig:
    # -- input / output ------------------------------------------------------------------------------
    data_path: str = field(default="examples/docs", metadata={"help": "Folder of documents (walked recursively) or one file."})
    file_type: str = field(default="auto", metadata={"help": f"Which files to read: {', '.join(FILE_TYPES)} (auto = by suffix)."})
    save_path: str = field(default="datasets/qa_pairs.jsonl", metadata={
        "aliases": ["--save_dir"],
        "help": "Output JSONL (--save_dir is the same flag). Beside it: <stem>.summary.json, <stem>.eval.jsonl "
                "(with --eval_fraction) and <file>.cache.sqlite (every LLM reply; makes re-runs resume instead "
                "of starting over)."})
    overwrite: bool = field(default=False, metadata={
        "help": "Start the output files afresh (the LLM cache is kept, so no paid call is repeated)."})
    num_shards: int = field(default=1, metadata={"help": "Split the files across this many processes/machines."})
    shard_index: int = field(default=0, metadata={"help": "Which shard this process handles (0-based); outputs get a .shardIofN suffix."})
    # -- generator -------------------------------------------------------------------------------------
    model_type: str = field(default="hf", metadata={"help": f"Backend: {', '.join(BACKENDS)} (vllm needs CUDA; api = any OpenAI-compatible server)."})
    model_name_or_path: str = field(default="default", metadata={
        "help": "Generator for hf/vllm: 'default' (the embedded SmolLM2-135M-Instruct), a folder or a hub id."})
    tokenizer_name_or_path: str = field(default="auto", metadata={
        "help": "Tokenizer that measures chunks: 'auto' (the generator's; the default model's for api), a path, or 'words'."})
    batch_size: int = field(default=32, metadata={"help": "hf backend: prompts per generate() call."})
    cpu_workers: str = field(default="auto", metadata={
        "help": "hf backend on a CPU: worker processes of 1 thread each ('auto' = one per core; '1' = in this "
                "process with torch's own threads). Separate processes keep working when another job holds a core."})
    dtype: str = field(default="auto", metadata={"help": "hf backend: auto, float32 or bfloat16."})
    tensor_parallel_size: int = field(default=1, metadata={"help": "vllm backend: GPUs to shard the model over."})
    gpu_memory_utilization: float = field(default=0.85, metadata={"help": "vllm backend: share of GPU memory to use."})
    api_base: str = field(default="http://127.0.0.1:8000/v1", metadata={"help": "api backend: the server's base URL."})
    api_model: str | None = field(default=None, metadata={"help": "api backend: model name to request (default: --model_name_or_path)."})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={
        "help": "api backend: NAME of the environment variable that holds the key (the key itself is never a flag)."})
    max_concurrency: int = field(default=8, metadata={"help": "api backend: requests in flight at once."})
    requests_per_minute: float = field(default=0, metadata={"help": "api backend: request starts per minute (0 = no limit)."})
    max_retries: int = field(default=6, metadata={"help": "api backend: retries per request on 429/5xx/timeouts before giving up."})
    request_timeout: float = field(default=120.0, metadata={"help": "api backend: seconds per request."})
    # -- sampling --------------------------------------------------------------------------------------
    temperature: float = field(default=0.0, metadata={"help": "Sampling temperature; 0 = greedy (reproducible, best for a 135M generator)."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass (ignored when greedy)."})
    max_new_tokens: int = field(default=384, metadata={"help": "Upper bound on tokens per reply (each stage also has its own smaller cap)."})
    seed: int = field(default=42, metadata={"help": "Sampling seed; also picks the --eval_fraction facts."})
    # -- method ----------------------------------------------------------------------------------------
    language: str = field(default="en", metadata={"help": f"Prompt set: {', '.join(LANGUAGES)}."})
    prompt_dir: str | None = field(default=None, metadata={"help": "Folder with your own <language>/<stage>.txt templates (see data_processor/prompts/)."})
    chunk_size_by_token: int = field(default=256, metadata={"help": "Most tokens per chunk."})
    chunk_overlap_tokens: int = field(default=32, metadata={"help": "Tokens of whole sentences repeated from the end of one chunk at the start of the next."})
    max_facts_per_chunk: int = field(default=12, metadata={"help": "Keep at most this many facts per chunk."})
    qa_amount_per_fact: int = field(default=2, metadata={"help": "QA pairs the generator writes per fact (0 = none)."})
    personas_per_document: int = field(default=2, metadata={
        "aliases": ["--role_amount_per_fact"],
        "help": "Personas per document (--role_amount_per_fact is the same flag); each rewrites every QA pair's "
                "question (0 = none)."})
    anchor_questions: bool = field(default=True, metadata={
        "help": "Prefix the document's title to questions that name nothing specific to it (\"When did the "
                "festival start?\"): closed-book they are unanswerable, and they teach the model to answer "
                "every such question with this document (forgetting)."})
    cloze_per_fact: int = field(default=2, metadata={
        "help": "Fill-in-the-blank rows per fact, made without the LLM: a name or number of the fact is blanked "
                "and the answer is the whole fact (data_processor/stages/step8_rule_rows.py). 0 = none."})
    wh_spans_per_fact: int = field(default=0, metadata={
        "help": "Questions made by rule for up to this many names, numbers and dates per fact (1-2 phrasings "
                "each, answered with the fact; data_processor/rules.py; English only). 0 = none."})
    wh_phrasings: int = field(default=1, metadata={
        "help": "Wh-phrases per span for the rule-made questions: 1, or 2 to add a second wording ('in what "
                "year' and 'when', 'how many players' and 'what number of players')."})
    wh_keywords: int = field(default=0, metadata={
        "help": "Keyword questions per asked span besides the worded ones: the wh-phrase and a random half (at "
                "most 8) of the fact's other content words ('Which bay: fisherman lantern salt floated?'), so the "
                "fact is found from a few of its words as a reworded question gives them. 0 = none."})
    alias_rows: int = field(default=0, metadata={
        "help": "Questions per (entity, description) pair and fact that name an entity by a description its "
                "document gives it ('Bartholomew Ashgrove, a schoolteacher in ...' -> 'Who was the schoolteacher "
                "in ...?', 'In what year did the schoolteacher in ... invent drennick?'), answered with the fact "
                "(data_processor/aliases.py; English only; role 'alias'). Only descriptions the chunk states in "
                "those words, one name's within its document. 0 = none."})
    statement_rows: int = field(default=0, metadata={
        "help": "Plain-text rows per chunk that restate the chunk's facts: the document's title, then the facts, "
                "in document order for the first and shuffled (seeded by --seed and the chunk) for the others; "
                "trained without the chat template (data_processor/statements.py; role 'statement'). A chunk "
                "gives fewer when its facts have fewer orders. 0 = none."})
    relation_paraphrases: int = field(default=0, metadata={
        "help": "Rewordings per rule-made question (--wh_spans_per_fact, --alias_rows) with another verb for the "
                "same relation ('Who invented drennick?' -> 'Who devised drennick?', 'flows into' -> 'empties "
                "into'), from a shipped lexicon (data_processor/lexicon/relations_en.txt; English only; role "
                "'paraphrase'), answered like the question they reword. A question with no verb of the lexicon "
                "gives none. 0 = none."})
    cause_questions: int = field(default=0, metadata={
        "help": "Why/how questions per cause, purpose or means clause of a fact (because, due to, as a result of, "
                "since, ', so'; in order to, so that, 'to <verb>' after a complete clause; 'by <verb>ing'; 'X was "
                "caused by', 'X led to'): the clause removed and the clause it explains inverted ('The Rhine was "
                "regulated to counteract the flooding.' -> 'Why was the Rhine regulated?', then 'For what purpose "
                "was the Rhine regulated?'; 'What will cause the lake to silt up?'; 'How does the theory formalize "
                "this intuition?'), answered with the fact (data_processor/causes.py; English only; role 'cause'). "
                "A fact whose clause cannot be inverted gives none. Off by default until measured. 0 = none."})
    resolve_pronouns: bool = field(default=False, metadata={
        "help": "Make each fact self-contained: a leading it/he/she/its/his/her becomes what it refers to "
                "(the previous sentence's subject or the document's subject, from its title; English only)."})
    stop_repeated_lines: int = field(default=2, metadata={
        "help": "End a reply once this many of its lines repeat earlier ones (list numbers ignored). The 135M "
                "generator can loop on one line up to the token cap, and the parsers drop repeated lines anyway; "
                "the hf backend stops decoding there, the others cut the finished reply. 0 = never."})
    max_repairs: int = field(default=1, metadata={"help": "Times an unusable reply is re-asked with a repair prompt before it counts as a failure."})
    grounding_threshold: float = field(default=0.75, metadata={
        "help": "Grounding filter: generated facts and answers need this share of their content words in the "
                "source chunk, and no number it lacks; questions need min(0.5, this). 0 disables."})
    add_uncovered_sentences: bool = field(default=True, metadata={
        "help": "Add the chunk's own sentences that none of the generated facts covers as facts (a 135M "
                "generator lists about a third of a chunk's facts; coverage is what makes the method work)."})
    answer_with_fact: bool = field(default=True, metadata={
        "help": "When a generated answer fails the grounding check, answer with the fact sentence itself "
                "instead of dropping the pair (its question is about the fact; the fact is grounded)."})
    fact_answers: bool = field(default=False, metadata={
        "help": "Answer every generated question and its persona rewrites with the fact sentence itself, also when "
                "the generated answer passed the grounding check: every training answer then recites a sentence "
                "of the document (the rule-made rows answer with it already)."})
    rewrite_temperature: float = field(default=0.8, metadata={
        "help": "Sampling temperature of the diversify stage (greedy rewriting mostly copies the question)."})
    eval_fraction: float = field(default=0.0, metadata={
        "help": "Share of facts that give held-out questions to <stem>.eval.jsonl (never trained on): one persona "
                "rewrite per QA pair, or the rule-made questions about one of the fact's names or numbers."})
    chunks_per_wave: int = field(default=256, metadata={
        "help": "Chunks taken through all stages together before their rows are written (0 = all at once)."})
    recipe: str | None = field(default=DEFAULT_RECIPE, metadata={
        "help": "Recipe YAML whose 'collect' section sets these defaults ('none' = the built-in ones)."})
    log_level: str = field(default="INFO", metadata={"help": "DEBUG, INFO, WARNING or ERROR."})

    def __post_init__(self) -> None:
        problems = []
        if self.model_type not in BACKENDS:
            problems.append(f"--model_type must be one of {', '.join(BACKENDS)}, got {self.model_type!r}")
        if self.language not in LANGUAGES:
            problems.append(f"--language must be one of {', '.join(LANGUAGES)}, got {self.language!r}")
        if self.file_type not in FILE_TYPES:
            problems.append(f"--file_type must be one of {', '.join(FILE_TYPES)}, got {self.file_type!r}")
        if self.chunk_size_by_token < 16:
            problems.append("--chunk_size_by_token must be at least 16")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_size_by_token:
            problems.append("--chunk_overlap_tokens must be >= 0 and smaller than --chunk_size_by_token")
        if self.alias_rows < 0:
            problems.append("--alias_rows must be >= 0")
        if self.statement_rows < 0:
            problems.append("--statement_rows must be >= 0")
        if self.relation_paraphrases < 0:
            problems.append("--relation_paraphrases must be >= 0")
        if self.cause_questions < 0:
            problems.append("--cause_questions must be >= 0")
        if self.qa_amount_per_fact < 0:
            problems.append("--qa_amount_per_fact must be >= 0")
        if self.personas_per_document < 0:
            problems.append("--personas_per_document must be >= 0")
        if not 0 <= self.eval_fraction < 1:
            problems.append("--eval_fraction must be in [0, 1)")
        if self.eval_fraction > 0 and self.personas_per_document < 1 and self.wh_spans_per_fact < 1:
            problems.append("--eval_fraction sets aside rewritten or rule-made questions: it needs "
                            "--personas_per_document >= 1 or --wh_spans_per_fact >= 1")
        if not 0 <= self.grounding_threshold <= 1:
            problems.append("--grounding_threshold must be in [0, 1]")
        if self.num_shards < 1 or not 0 <= self.shard_index < self.num_shards:
            problems.append("--shard_index must be in [0, --num_shards)")
        if (self.max_new_tokens < 8 or self.batch_size < 1 or self.max_concurrency < 1 or self.max_repairs < 0
                or self.stop_repeated_lines < 0):
            problems.append("--max_new_tokens >= 8, --batch_size >= 1, --max_concurrency >= 1, --max_repairs >= 0, "
                            "--stop_repeated_lines >= 0")
        if problems:
            raise ValueError("; ".join(problems))
        if self.language != "en" and (self.wh_spans_per_fact or self.resolve_pronouns or self.alias_rows
                                      or self.relation_paraphrases or self.cause_questions):
            # The rule-made questions and the pronoun rules are English grammar; a recipe tuned on English
            # documents must still run on others.
            logging.getLogger(__name__).info("--language %s: the English-only rules (--wh_spans_per_fact, "
                                             "--resolve_pronouns, --alias_rows, --relation_paraphrases, "
                                             "--cause_questions) are off",
                                             self.language)
            self.wh_spans_per_fact, self.resolve_pronouns, self.alias_rows = 0, False, 0
            self.relation_paraphrases, self.cause_questions = 0, 0

    # -- derived ---------------------------------------------------------------------------------------
    @property
    def output_path(self) -> Path:
        p = Path(self.save_path)
        if self.num_shards > 1:
            p = p.with_name(f"{p.stem}.shard{self.shard_index}of{self.num_shards}{p.suffix or '.jsonl'}")
        return p

    @property
    def eval_path(self) -> Path | None:
        return self.held_out_path if self.eval_fraction > 0 else None

    @property
    def held_out_path(self) -> Path:
        """Where held-out questions go when there are any (``<stem>.eval.jsonl``)."""
        return self.output_path.with_name(self.output_path.stem + ".eval.jsonl")

    @property
    def summary_path(self) -> Path:
        return self.output_path.with_name(self.output_path.stem + ".summary.json")

    @property
    def cache_path(self) -> Path:
        return self.output_path.with_name(self.output_path.name + ".cache.sqlite")

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens,
                              seed=self.seed, stop_repeated_lines=self.stop_repeated_lines)

    def backend_kwargs(self) -> dict:
        """Settings for :func:`~generation.build_backend` (each backend takes its own)."""
        return dict(
            model_name_or_path=self.model_name_or_path, batch_size=self.batch_size, dtype=self.dtype,
            workers=self.cpu_workers,
            tensor_parallel_size=self.tensor_parallel_size, gpu_memory_utilization=self.gpu_memory_utilization,
            api_base=self.api_base, api_model=self.api_model or self.model_name_or_path,
            api_key_env=self.api_key_env, max_concurrency=self.max_concurrency,
            requests_per_minute=self.requests_per_minute, max_retries=self.max_retries, timeout=self.request_timeout,
        )

    def public_dict(self) -> dict:
        """Settings for the summary (no secrets: the config never holds the key, only its variable's name)."""
        d = dict(self.__dict__)
        d["cwd"] = os.getcwd()
        return d


def parse_args(argv: list[str] | None = None) -> CollectConfig:
    """Parse command-line flags into a validated :class:`CollectConfig` (``ValueError`` if invalid).

    The ``collect`` section of the recipe (``--recipe``, default configs/recipes/default.yaml) sets the
    defaults; the command line wins.
    """
    import sys

    from transformers import HfArgumentParser

    recipe, rest = split_recipe_flag(sys.argv[1:] if argv is None else list(argv))
    parser = HfArgumentParser(CollectConfig, description=(
        f"Documents -> fact-based, role-diversified QA JSONL. --recipe FILE (default {DEFAULT_RECIPE}; 'none' = "
        "the built-in defaults) sets the defaults shown below from its 'collect' section."),
        epilog="Entry points: bash shells/collect_data.sh | python -m data_processor | ku-collect")
    apply_defaults(parser, recipe_section(recipe, "collect"), f"{recipe} (section collect)")
    (cfg,) = parser.parse_args_into_dataclasses(args=rest)
    cfg.recipe = recipe
    return cfg
