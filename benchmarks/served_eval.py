"""The updated model of a finished run, asked through llama.cpp's server and in process: same answers?

    python -m benchmarks.served_eval --run_dir runs/quickstart-X                  # q8_0, every held-out question
    python -m benchmarks.served_eval --run_dir runs/quickstart-X --gguf_type f16 --served_base True

Exports the run's adapter to GGUF (finetuning/export.py, with the logits round-trip check), serves it with
``python -m llama_cpp.server`` (finetuning/serve.py's settings: the GGUF's chat template, no repeat
penalty), and runs evaluate.py with the in-process columns (base, updated) and the served one
(``updated_served``; with --served_base also the base model's GGUF, ``base_served``), greedy everywhere.
The questions and evaluation settings are the run's own (``<run>/eval/results.json``), and the run's cached
in-process replies are reused. Prints the evaluation table and, per set and served model, its accuracy
against the in-process one (the gap in questions), how many replies are the same word for word and how
many start with the same five words. Writes ``<run>/served_eval/served_eval.json``; exits 1 when a served
model is more than --max_diff questions away from its in-process twin on a knowledge set.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from utils.io_utils import atomic_write_json
from utils.tables import format_table


@dataclass
class ServedEvalArguments:
    run_dir: str = field(metadata={"help": "A finished quickstart run folder (adapter/, eval/results.json)."})
    gguf_type: str = field(default="q8_0", metadata={"choices": ["q8_0", "f16", "f32"], "help": "GGUF type to serve."})
    served_base: bool = field(default=False, metadata={
        "help": "Also serve the base model's GGUF (is the base through llama.cpp the in-process base?)."})
    qa_file: str | None = field(default=None, metadata={
        "help": "Questions (default: the run's held-out file(s), from eval/results.json)."})
    control_file: str | None = field(default=None, metadata={
        "help": "Control questions (default: the run's; 'none' for none)."})
    max_questions: int = field(default=0, metadata={"help": "Only the first N questions of each set (0 = all)."})
    max_diff: int = field(default=2, metadata={"help": "Largest accepted accuracy gap, in questions (exit 1 above)."})
    threads: int = field(default=0, metadata={"help": "llama.cpp threads per server (0: its own choice)."})
    output_dir: str | None = field(default=None, metadata={"help": "Default <run_dir>/served_eval."})


def run_config(run: Path) -> dict:
    """The evaluation settings and the updated model's adapter path as the run's evaluation recorded them."""
    results = run / "eval" / "results.json"
    if results.is_file():
        data = json.loads(results.read_text(encoding="utf-8"))
        adapter = next((m["adapter"] for m in data["models"] if m.get("adapter")), None)
        return {**data["config"], "adapter": adapter or str(run / "adapter")}
    return {"adapter": str(run / "adapter")}


def compare(results: dict, pairs: dict[str, str], first_words: int = 5) -> list[dict]:
    """One row per (set, served label): accuracy in and out of process, gap in questions, replies identical
    word for word, and replies that start with the same ``first_words`` words (long greedy replies of two
    numerically different runtimes part ways sooner or later; a wrong chat template parts them at once)."""
    rows = []
    for name, s in results["sets"].items():
        for served, twin in pairs.items():
            qs = s["questions"]
            right = {lab: sum(bool(q["predictions"][lab]["contains"]) for q in qs) for lab in (served, twin)}
            texts = [(q["predictions"][served]["text"], q["predictions"][twin]["text"]) for q in qs]
            rows.append({"set": name, "kind": s["kind"], "served": served, "in_process": twin, "questions": len(qs),
                         "right_in_process": right[twin], "right_served": right[served],
                         "gap": right[served] - right[twin], "identical_replies": sum(a == b for a, b in texts),
                         "same_start": sum(a.split()[:first_words] == b.split()[:first_words] for a, b in texts)})
    return rows


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    from evaluation import runner
    from finetuning.export import export_gguf
    from finetuning.serve import UpdatedModelServer
    from utils.logging_utils import setup_logging

    (args,) = HfArgumentParser(ServedEvalArguments, description=__doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    run = Path(args.run_dir)
    cfg = run_config(run)
    adapter = Path(cfg["adapter"])
    if not (adapter / "adapter_config.json").is_file():
        print(f"{adapter}: no adapter_config.json; is {run} a finished run?", file=sys.stderr)
        return 2
    out = Path(args.output_dir or run / "served_eval")
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    for f in (run / "eval" / "predictions").glob("*.json"):  # the stamps decide whether they still apply
        if not (out / "predictions" / f.name).exists():
            shutil.copy2(f, out / "predictions" / f.name)

    base = cfg.get("model_name_or_path", "default")
    exported = export_gguf(adapter, gguf_type=args.gguf_type, check=True)
    print(exported.check.summary(), flush=True)
    base_gguf = (export_gguf(model=base, output=adapter / "gguf" / "base", gguf_type=args.gguf_type).gguf
                 if args.served_base else None)
    qa = args.qa_file or ",".join(cfg.get("qa_file") or ["examples/eval_qa.jsonl"])
    control = args.control_file or cfg.get("control_file") or "none"
    common = dict(threads=args.threads or None, n_ctx=2048)
    with contextlib.ExitStack() as stack:
        upd = stack.enter_context(UpdatedModelServer(exported.gguf, out / "server_updated.log", alias="updated",
                                                     **common))
        argv_eval = ["--recipe", "none", "--model_name_or_path", base, "--qa_file", qa, "--control_file", control,
                     "--adapters", f"updated={adapter}", "--served", f"updated_served={upd.base_url},updated",
                     "--max_questions", str(args.max_questions), "--output_dir", str(out)]
        if base_gguf:
            srv = stack.enter_context(UpdatedModelServer(base_gguf, out / "server_base.log", alias="base", **common))
            argv_eval += ["--served", f"base_served={srv.base_url},base"]
        for key in ("max_new_tokens", "batch_size", "dtype", "cpu_workers", "system_prompt"):
            if cfg.get(key) is not None:
                argv_eval += [f"--{key}", str(cfg[key])]
        rc = runner.main(argv_eval)
    if rc != 0:
        return rc
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    pairs = {"updated_served": "updated", **({"base_served": "base"} if base_gguf else {})}
    rows = compare(results, pairs)
    print(format_table(["set", "served", "questions", "right in process", "right served", "gap", "identical replies",
                        "same first 5 words"],
                       [[r["set"], r["served"], r["questions"], r["right_in_process"], r["right_served"],
                         f"{r['gap']:+d}", r["identical_replies"], r["same_start"]] for r in rows]))
    atomic_write_json(out / "served_eval.json", {"gguf": exported.gguf, "gguf_type": args.gguf_type,
                                                 "check": asdict(exported.check), "base_gguf": base_gguf, "rows": rows})
    too_far = [r for r in rows if r["kind"] == "knowledge" and abs(r["gap"]) > args.max_diff]
    if too_far:
        print(f"served and in-process differ by more than {args.max_diff} questions on: "
              + ", ".join(f"{r['set']} ({r['served']} {r['gap']:+d})" for r in too_far))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
