"""``python -m replay``: make the self-distillation replay rows on their own (see replay/build.py).

The prompts file and the length cap default to the recipe's (``--recipe``, default
configs/recipes/default.yaml, section finetune: replay_prompts, replay_max_new_tokens), so the rows made
here are the ones finetune.py would use.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from replay.build import BUNDLED, build_replay, bundle_replay, ensure_replay
from utils.logging_utils import setup_logging
from utils.recipe import RecipeError, is_none, optional_file, recipe_section, split_recipe_flag

logger = logging.getLogger("replay")


@dataclass
class ReplayArguments:
    model_name_or_path: str = field(default="default", metadata={
        "help": "The model whose behaviour is preserved (the base model that will be fine-tuned)."})
    prompts: str = field(default="examples/replay_prompts.txt", metadata={
        "help": "Text file, one general prompt per line; the recipe's replay_prompts unless given."})
    output: str | None = field(default=None, metadata={
        "help": "Where to write the JSONL (default: the shared replay cache that finetune.py reads, "
                "~/.cache/knowledge_update/replay/)."})
    max_new_tokens: int = field(default=128, metadata={
        "help": "Length cap of each replayed answer; the recipe's replay_max_new_tokens unless given."})
    checks: str = field(default="none", metadata={
        "help": "JSONL of {question, answers}: rows whose answer contains none of their prompt's answers are left "
                "out (a second, checked file in the cache; --output and --bundle write every answer); the recipe's replay_checks unless given."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per generate call."})
    cpu_workers: str = field(default="auto", metadata={
        "help": "On a CPU: worker processes of 1 thread each that generate the answers ('auto' = one per core; "
                "'1' = in this process with torch's own threads). Separate processes keep working when another "
                "job holds a core."})
    bundle: bool = field(default=False, metadata={
        "help": f"Regenerate the default model's answers shipped in {BUNDLED.relative_to(BUNDLED.parents[1])} "
                "(after editing the prompts file or the length cap); other models are never bundled."})


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    recipe, rest = split_recipe_flag(sys.argv[1:] if argv is None else list(argv))
    parser = HfArgumentParser(ReplayArguments, description=__doc__, epilog="Entry points: python -m replay | ku-replay")
    try:
        section = recipe_section(recipe, "finetune")
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not is_none(section.get("replay_prompts", "none")):
        parser.set_defaults(prompts=section["replay_prompts"])
    if not is_none(section.get("replay_checks", "none")):
        parser.set_defaults(checks=section["replay_checks"])
    if "replay_max_new_tokens" in section:
        parser.set_defaults(max_new_tokens=section["replay_max_new_tokens"])
    (args,) = parser.parse_args_into_dataclasses(args=rest)
    setup_logging()
    try:
        prompts = optional_file(args.prompts, "--prompts")
        checks = optional_file(args.checks, "--checks")
    except FileNotFoundError as exc:
        logger.error("%s", exc)
        return 2
    if prompts is None:
        logger.error("--prompts none: there is nothing to answer")
        return 2
    if args.bundle:
        if args.model_name_or_path != "default" or args.output:
            logger.error("--bundle makes the default model's shipped answers; it takes neither a model nor --output")
            return 2
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


if __name__ == "__main__":
    sys.exit(main())
