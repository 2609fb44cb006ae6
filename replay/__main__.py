"""``python -m replay``: make the self-distillation replay rows on their own (see replay/build.py), or with
``--kind text`` the text-replay rows (plain-text samples, replay/text.py).

The prompts file and the length cap default to the recipe's (``--recipe``, default
configs/recipes/default.yaml, section finetune: replay_prompts, replay_max_new_tokens; with ``--kind text``
text_replay_openers, text_replay_max_new_tokens), so the rows made here are the ones finetune.py would use.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from replay import text
from replay.build import BUNDLED, build_replay, bundle_replay, ensure_replay
from utils.logging_utils import setup_logging
from utils.recipe import RecipeError, is_none, optional_file, recipe_section, split_recipe_flag

logger = logging.getLogger("replay")


#: per --kind: (recipe key of the prompts file, its default, recipe key of the length cap, its default)
KINDS = {"chat": ("replay_prompts", "examples/replay_prompts.txt", "replay_max_new_tokens", 128),
         "text": ("text_replay_openers", "examples/text_replay_openers.txt", "text_replay_max_new_tokens", 96)}


@dataclass
class ReplayArguments:
    model_name_or_path: str = field(default="default", metadata={
        "help": "The model whose behaviour is preserved (the base model that will be fine-tuned)."})
    kind: str = field(default="chat", metadata={
        "help": "chat: the model's greedy answers to general prompts (replay/build.py); text: its sampled "
                "continuations of plain-text openers (replay/text.py)."})
    prompts: str | None = field(default=None, metadata={
        "help": "Text file, one general prompt (--kind chat) or plain-text opener (--kind text) per line; the "
                "recipe's replay_prompts or text_replay_openers unless given, else examples/replay_prompts.txt or "
                "examples/text_replay_openers.txt."})
    output: str | None = field(default=None, metadata={
        "help": "Where to write the JSONL (default: the shared replay cache that finetune.py reads, "
                "~/.cache/knowledge_update/replay/)."})
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "Length cap of each replayed answer or text sample; the recipe's replay_max_new_tokens or "
                "text_replay_max_new_tokens unless given, else 128 (chat) or 96 (text)."})
    checks: str = field(default="none", metadata={
        "help": "JSONL of {question, answers}: rows whose answer contains none of their prompt's answers are left "
                "out (a second, checked file in the cache; --output and --bundle write every answer); the recipe's "
                "replay_checks unless given. --kind chat only."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per generate call."})
    cpu_workers: str = field(default="auto", metadata={
        "help": "On a CPU: worker processes of 1 thread each that generate the answers ('auto' = one per core; "
                "'1' = in this process with torch's own threads). Separate processes keep working when another "
                "job holds a core. --kind chat only: text samples are made in this process."})
    bundle: bool = field(default=False, metadata={
        "help": f"Regenerate the default model's rows shipped in {BUNDLED.relative_to(BUNDLED.parents[1])} "
                f"(--kind text: {text.BUNDLED.relative_to(text.BUNDLED.parents[1])}) after editing the prompts file "
                "or the length cap; other models are never bundled."})


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    recipe, rest = split_recipe_flag(sys.argv[1:] if argv is None else list(argv))
    parser = HfArgumentParser(ReplayArguments, description=__doc__, epilog="Entry points: python -m replay | ku-replay")
    try:
        section = recipe_section(recipe, "finetune")
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not is_none(section.get("replay_checks", "none")):
        parser.set_defaults(checks=section["replay_checks"])
    (args,) = parser.parse_args_into_dataclasses(args=rest)
    setup_logging()
    if args.kind not in KINDS:
        logger.error("--kind %s: not one of %s", args.kind, ", ".join(KINDS))
        return 2
    prompts_key, prompts_default, cap_key, cap_default = KINDS[args.kind]
    if args.prompts is None:
        args.prompts = prompts_default if is_none(section.get(prompts_key, "none")) else section[prompts_key]
    if args.max_new_tokens is None:
        args.max_new_tokens = section.get(cap_key, cap_default)
    try:
        prompts = optional_file(args.prompts, "--prompts")
        checks = optional_file(args.checks, "--checks")
    except FileNotFoundError as exc:
        logger.error("%s", exc)
        return 2
    if prompts is None:
        logger.error("--prompts none: there is nothing to %s", "continue" if args.kind == "text" else "answer")
        return 2
    if args.bundle and (args.model_name_or_path != "default" or args.output):
        logger.error("--bundle makes the default model's shipped rows; it takes neither a model nor --output")
        return 2
    if args.kind == "text":
        path = text_rows_file(args, prompts)
    elif args.bundle:
        path = bundle_replay(prompts, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                             workers=args.cpu_workers)
    elif args.output:
        path = build_replay(args.model_name_or_path, prompts, Path(args.output), max_new_tokens=args.max_new_tokens,
                            batch_size=args.batch_size, workers=args.cpu_workers)
    else:
        path = ensure_replay(args.model_name_or_path, prompts, max_new_tokens=args.max_new_tokens,
                             batch_size=args.batch_size, checks_path=checks, workers=args.cpu_workers)
    print(path)
    return 0


def text_rows_file(args: ReplayArguments, openers: Path) -> Path:
    """``--kind text``: the bundle, the --output file or the cached file, as for the chat replay."""
    if args.bundle:
        return text.bundle_text_replay(openers, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    if args.output:
        return text.build_text_replay(args.model_name_or_path, openers, Path(args.output),
                                      max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    return text.ensure_text_replay(args.model_name_or_path, openers, max_new_tokens=args.max_new_tokens,
                                   batch_size=args.batch_size)


if __name__ == "__main__":
    sys.exit(main())
