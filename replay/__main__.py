"""``python -m replay``: make the self-distillation replay rows on their own (see replay/build.py)."""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from replay.build import build_replay, ensure_replay
from utils.logging_utils import setup_logging
from utils.recipe import repo_path

logger = logging.getLogger("replay")


@dataclass
class ReplayArguments:
    model_name_or_path: str = field(default="default", metadata={
        "help": "The model whose behaviour is preserved (the base model that will be fine-tuned)."})
    prompts: str = field(default="examples/replay_prompts.txt", metadata={"help": "Text file, one general prompt per line."})
    output: str | None = field(default=None, metadata={
        "help": "Where to write the JSONL (default: the shared replay cache that finetune.py reads, "
                "~/.cache/knowledge_update/replay/)."})
    max_new_tokens: int = field(default=128, metadata={"help": "Length cap of each replayed answer."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per generate call."})


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(ReplayArguments, description=__doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    prompts = repo_path(args.prompts)
    if not prompts.is_file():
        logger.error("prompts file %s not found", args.prompts)
        return 2
    if args.output:
        path = build_replay(args.model_name_or_path, prompts, Path(args.output), max_new_tokens=args.max_new_tokens,
                            batch_size=args.batch_size)
    else:
        path = ensure_replay(args.model_name_or_path, prompts, max_new_tokens=args.max_new_tokens,
                             batch_size=args.batch_size)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
