"""Self-distillation replay data: the base model's own answers to general prompts.

Fine-tuning a small model on a few hundred QA pairs about new documents overwrites general knowledge
(measured here: control accuracy 0.70 -> 0.15 with a naive recipe). Mixing in the *base* model's own
greedy answers to unrelated prompts (cf. SDFT, arXiv 2402.13669) anchors the rest of its behaviour,
and needs no external data set: the replay rows are whatever the model already says.

    python -m utils.self_distill --model_name_or_path default --prompts examples/replay_prompts.txt \
        --output datasets/replay.jsonl
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

from utils.io_utils import atomic_write_text

logger = logging.getLogger(__name__)


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


def build_replay(model_name_or_path: str, prompts_path: str | Path, output: str | Path, *,
                 max_new_tokens: int = 128, batch_size: int = 16, backend=None) -> Path:
    """Generate (greedy) and write the replay JSONL atomically; skip if ``output`` is already complete."""
    from data_processor.backends.base import SamplingConfig
    from data_processor.backends.hf import HFBackend

    output = Path(output)
    prompts = read_prompts(prompts_path)
    meta = output.with_suffix(output.suffix + ".meta.json")
    key = {"model": str(model_name_or_path), "prompts": hashlib.sha256("\n".join(prompts).encode()).hexdigest(),
           "max_new_tokens": max_new_tokens}
    if output.exists() and meta.exists() and json.loads(meta.read_text()) == key:
        logger.info("Replay data up to date: %s", output)
        return output
    backend = backend or HFBackend(model_name_or_path, batch_size=batch_size, progress_desc="replay answers")
    # Greedy: the replay should be the model's single most likely behaviour, not a sample of it.
    answers = backend.generate([[{"role": "user", "content": p}] for p in prompts],
                               SamplingConfig(temperature=0.0, max_new_tokens=max_new_tokens))
    rows = replay_rows(prompts, answers)
    atomic_write_text(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    atomic_write_text(meta, json.dumps(key))
    logger.info("Wrote %d replay rows to %s", len(rows), output)
    return output


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name_or_path", default="default", help="The model whose behaviour is preserved (the base).")
    p.add_argument("--prompts", default="examples/replay_prompts.txt", help="Text file, one general prompt per line.")
    p.add_argument("--output", default="datasets/replay.jsonl", help="Where to write the replay JSONL.")
    p.add_argument("--max_new_tokens", type=int, default=128, help="Length cap of each replayed answer.")
    p.add_argument("--batch_size", type=int, default=16, help="Prompts per generate call.")
    args = p.parse_args(argv)
    from utils.logging_utils import setup_logging

    setup_logging()
    if not Path(args.prompts).is_file():
        print(f"error: prompts file {args.prompts} not found", file=sys.stderr)
        return 2
    build_replay(args.model_name_or_path, args.prompts, args.output,
                 max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
