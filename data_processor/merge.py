"""Merge the outputs of a sharded collection into one training file (and one eval file).

    # two machines (or processes), each a part of the documents:
    bash shells/collect_data.sh --data_path docs --save_path datasets/qa.jsonl --num_shards 2 --shard_index 0
    bash shells/collect_data.sh --data_path docs --save_path datasets/qa.jsonl --num_shards 2 --shard_index 1
    # then, with the shard files in one place:
    python -m data_processor.merge --save_path datasets/qa.jsonl --num_shards 2

Rows go through the same de-duplication as a single run (a question/answer pair, or a held-out
question, that two shards both wrote is kept once), in shard order. A shard whose summary says it did
not complete stops the merge (finish it first: the same command resumes it), unless --allow_incomplete.
"""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field

from utils.io_utils import DataFileError, iter_jsonl

from .config import CollectConfig
from .stages.step9_write import OutputSet

logger = logging.getLogger(__name__)


@dataclass
class MergeArguments:
    save_path: str = field(default="datasets/qa_pairs.jsonl", metadata={
        "aliases": ["--save_dir"], "help": "The collector's --save_path; the shards are <stem>.shardIofN.jsonl beside it."})
    num_shards: int = field(default=2, metadata={"help": "How many shards the collection was split into."})
    allow_incomplete: bool = field(default=False, metadata={"help": "Merge even if a shard did not complete."})


def shard_config(args: MergeArguments, index: int) -> CollectConfig:
    """The names shard ``index`` wrote (its output, held-out and summary files)."""
    return CollectConfig(save_path=args.save_path, num_shards=args.num_shards, shard_index=index, recipe=None)


def merge(args: MergeArguments) -> dict:
    """Write the merged files; returns counts. Raises :class:`DataFileError` naming a missing or unfinished shard."""
    shards = [shard_config(args, i) for i in range(args.num_shards)]
    for cfg in shards:
        if not cfg.output_path.is_file():
            raise DataFileError(f"{cfg.output_path}: shard {cfg.shard_index} of {args.num_shards} not found")
        status = json.loads(cfg.summary_path.read_text())["summary"]["status"] if cfg.summary_path.is_file() else "?"
        if status != "complete" and not args.allow_incomplete:
            raise DataFileError(f"{cfg.output_path}: shard {cfg.shard_index} did not complete (status {status}); "
                                "run its command again to finish it, or pass --allow_incomplete True")
    merged = CollectConfig(save_path=args.save_path, recipe=None)
    with_eval = any(cfg.held_out_path.is_file() for cfg in shards)
    for path in (merged.output_path, merged.held_out_path):
        if path.exists():
            path.unlink()  # a merge is rebuilt from the shards, never appended to
    out = OutputSet(merged.output_path, merged.held_out_path if with_eval else None)
    try:
        for cfg in shards:
            for _, row in iter_jsonl(cfg.output_path):
                out.add_train(row)
            if cfg.held_out_path.is_file():
                for _, row in iter_jsonl(cfg.held_out_path):
                    out.add_eval(row)
    finally:
        out.close()
    return out.written


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    from utils.logging_utils import setup_logging

    setup_logging()
    parser = HfArgumentParser(MergeArguments, description=__doc__,
                              epilog="Entry points: python -m data_processor.merge")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    try:
        written = merge(args)
    except DataFileError as exc:
        logger.error("%s", exc)
        return 2
    print(f"merged {args.num_shards} shards into {args.save_path}: {written['train']} training rows, "
          f"{written['eval']} held-out, {written['duplicates']} duplicates dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
