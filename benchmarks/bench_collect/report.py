"""The collection benchmark's figures: per-job medians, ratios formed within each round, each target's
verdict, and for each target missed the measured reason (:data:`RATIOS` names which reason each target
gets). Pure functions of a results.json's content, so ``--report`` prints an earlier run's tables again.
"""
from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bench_collect.jobs import KIND
from utils.tables import format_table


def weighted_reference_tok_s(run_stages: dict, ref_stages: dict) -> tuple[float | None, float]:
    """The bare model's tok/s over a run's own token mix: ``sum(T_s) / sum(T_s / ref_s)`` over the stages
    both measured (each stage's tokens at the reference's rate for that stage); also the share of the
    run's tokens those stages cover."""
    total = sum(s["completion_tokens"] for s in run_stages.values())
    tokens = seconds = 0.0
    for name, s in run_stages.items():
        ref = ref_stages.get(name) or {}
        if s["completion_tokens"] > 0 and ref.get("tok_s"):
            tokens += s["completion_tokens"]
            seconds += s["completion_tokens"] / ref["tok_s"]
    if not seconds:
        return None, 0.0
    return tokens / seconds, tokens / total if total else 0.0


# -- why a target was missed: each a function of the results, named by its Ratio ---------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _tok(summary: dict, cond: str, job: str) -> float | None:
    return (summary["jobs"].get(cond, {}).get(job) or {}).get("gen_tok_s")


def _run0(report: dict, cond: str, job: str) -> dict | None:
    """Round 0's run of ``job`` (where a reason needs one run's figures)."""
    return index_runs(report["runs"]).get((0, cond, job))


def stage_speedups(a_stages: dict, b_stages: dict, target: float) -> str:
    """Each stage's (a) seconds over (b) seconds, and the stage whose (b) seconds exceed (a)'s / ``target``
    by the most."""
    both = {k: (a_stages[k]["seconds"], v["seconds"]) for k, v in b_stages.items()
            if k in a_stages and v.get("seconds") and a_stages[k].get("seconds")}
    if not both:
        return ""
    worst = max(both, key=lambda k: both[k][1] - both[k][0] / target)
    sa, sb = both[worst]
    return (" Per stage, (a)'s generate() seconds over (b)'s: "
            + ", ".join(f"{k} {a / b:.1f}x" for k, (a, b) in both.items())
            + f"; {worst} is furthest from {target:g}x: {sb:.0f} s where {target:g}x would need {sa / target:.0f} s.")


def why_batching(spec: Ratio, r: dict, report: dict, summary: dict) -> str:
    """(b) over (a): what the bare model gains from batching, the QA rows, the stage furthest from the target."""
    gain = (_tok(summary, "idle", "model_workers") or 0) / (_tok(summary, "idle", "sequential") or float("inf"))
    b, a = _run0(report, "idle", "collector") or {}, _run0(report, "idle", "sequential") or {}
    return (f"{r['label']}: (b) got {_tok(summary, 'idle', 'collector') or 0:.1f} tok/s vs (a) "
            f"{_tok(summary, 'idle', 'sequential') or 0:.1f}; the bare model.generate() on (b)'s prompts through "
            f"the worker layout makes {gain:.1f}x the tokens/s of (a)'s one-prompt calls; "
            f"QA rows (a) {a.get('qa_rows')} vs (b) {b.get('qa_rows')}."
            + stage_speedups(a.get("per_stage") or {}, b.get("per_stage") or {}, r["target"]))


def why_server(spec: Ratio, r: dict, report: dict, summary: dict) -> str:
    """(b) over llama-server: the server's settings and rate beside the bare hf model's."""
    c = report.get("server", {})
    server, bare = _tok(summary, "idle", "llama_server") or 0, _tok(summary, "idle", "model_workers") or 0
    return (f"{r['label']}: llama-server ({c.get('parallel')} slots, {c.get('threads')} threads, "
            f"{Path(c.get('gguf', '?')).name}) {server:.1f} tok/s; the bare hf model ({report.get('hf_dtype')}) on "
            f"(b)'s prompts through the worker layout {bare:.1f} tok/s"
            + (" - the model itself, not the pipeline, is slower than llama.cpp here." if bare < server else "."))


def why_pipeline(spec: Ratio, r: dict, report: dict, summary: dict) -> str | None:
    """(b) over the bare model: time outside generate(), the rate inside it, calls under a full batch."""
    b, ref = _run0(report, "idle", "collector"), _run0(report, "idle", "model_workers")
    if not b:
        return None
    gen_tok_s = b["completion_tokens"] / b["gen_seconds"] if b.get("gen_seconds") else 0
    ref_tok_s, cover = weighted_reference_tok_s(b["per_stage"], (ref or {}).get("per_stage", {}))
    under = sum(s["underfilled_seconds"] for s in b["per_stage"].values())
    return (f"{r['label']}: (b) spent {b['outside_seconds']:.0f} s of {b['seconds']:.0f} s "
            f"({_pct(b['outside_seconds'] / b['seconds'])}) outside generate() (stages, parsing, "
            f"repairs, cache, writing); inside generate() it made {gen_tok_s:.1f} tok/s"
            + (f" = {_pct(gen_tok_s / ref_tok_s)} of the bare model's {ref_tok_s:.1f} "
               f"(stages covering {_pct(cover)} of its tokens)" if ref_tok_s else "")
            + f"; generate() calls with fewer prompts than one full batch per worker "
            f"({b.get('full_batch')}) took {under:.0f} s of {b['gen_seconds']:.0f} s.")


def why_loaded(spec: Ratio, r: dict, report: dict, summary: dict) -> str:
    """A default-layout job's loaded/idle: the busy loop's share, the job's rates, and what the bare model
    (worker layout) and the one-process layout (``spec.beside``) kept under the same load."""
    job = spec.num
    ref = summary["ratios"].get("model_workers_loaded", {}).get("mean")
    old = summary["ratios"].get(spec.beside, {}).get("mean")
    load = report.get("background_load", {})
    return (f"{r['label']}: the busy loop held {load.get('cpu_share', '?')} of a core (cpu "
            f"{load.get('cpu')}); {job} {_tok(summary, 'idle', job) or 0:.1f} -> {_tok(summary, 'loaded', job) or 0:.1f} tok/s"
            + (f"; the bare model through the same worker layout kept {_pct(ref)}" if ref else "")
            + (f"; one process x torch threads kept {_pct(old)}" if old else "") + ".")


# -- ratios and targets -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ratio:
    """``num``/``den`` of ``metric``, per round: both in ``condition``, or ``den`` in ``den_condition``.
    ``weighted``: ``den`` is a reference, weighted by ``num``'s stage mix (:func:`weighted_reference_tok_s`).
    ``why``: for a target, the measured reason printed when it is missed (None: no line);
    ``beside``: the key of the ratio that reason quotes beside this one."""

    key: str
    label: str
    num: str
    den: str
    metric: str = "gen_tok_s"
    condition: str = "idle"
    den_condition: str | None = None
    target: float | None = None
    weighted: bool = False
    why: Callable[[Ratio, dict, dict, dict], str | None] | None = field(default=None, compare=False, repr=False)
    beside: str | None = None


RATIOS = (
    Ratio("b_over_a_qa", "collection (b)/(a) QA rows/min, idle", "collector", "sequential", "qa_per_min", target=4.0,
          why=why_batching),
    Ratio("b_over_a_tok", "collection (b)/(a) generated tok/s, idle", "collector", "sequential"),
    Ratio("b_over_generate_qa", "collection (b)/(b with model.generate) QA rows/min, idle", "collector",
          "collector_generate", "qa_per_min"),
    Ratio("b_over_generate_tok", "collection (b)/(b with model.generate) generated tok/s, idle", "collector",
          "collector_generate"),
    Ratio("b_over_c_tok", "(b)/(c) llama-server generated tok/s, idle", "collector", "llama_server", target=1.0,
          why=why_server),
    Ratio("b_over_c_qa", "(b)/(c) llama-server QA rows/min, idle", "collector", "llama_server", "qa_per_min"),
    Ratio("b_over_model_workers", "(b) / bare model generate(), same worker layout, batch, dtype: tok/s, idle",
          "collector", "model_workers", target=0.70, weighted=True, why=why_pipeline),
    Ratio("b_over_model_inproc", "(b) / bare model generate() in one process, same batch, dtype: tok/s, idle",
          "collector", "model_inproc", weighted=True),
    Ratio("b_loaded_qa", "collection (b) loaded/idle QA rows/min", "collector", "collector", "qa_per_min",
          "loaded", "idle", target=0.5, why=why_loaded, beside="collector_1proc_loaded"),
    Ratio("b_loaded_tok", "collection (b) loaded/idle generated tok/s", "collector", "collector", condition="loaded",
          den_condition="idle"),
    Ratio("replay_default_loaded", "replay, default layout, loaded/idle tok/s", "replay_default", "replay_default",
          condition="loaded", den_condition="idle", target=0.5, why=why_loaded, beside="replay_1proc_loaded"),
    Ratio("eval_default_loaded", "evaluation, default layout, loaded/idle tok/s", "eval_default", "eval_default",
          condition="loaded", den_condition="idle", target=0.5, why=why_loaded, beside="eval_1proc_loaded"),
    Ratio("replay_1proc_loaded", "replay, one process x torch threads, loaded/idle tok/s", "replay_1proc",
          "replay_1proc", condition="loaded", den_condition="idle"),
    Ratio("eval_1proc_loaded", "evaluation, one process x torch threads, loaded/idle tok/s", "eval_1proc",
          "eval_1proc", condition="loaded", den_condition="idle"),
    Ratio("collector_1proc_loaded", "collection, (b) in one process, loaded/idle tok/s", "collector_1proc",
          "collector_1proc", condition="loaded", den_condition="idle"),
    Ratio("a_loaded_tok", "collection (a) loaded/idle generated tok/s", "sequential", "sequential",
          condition="loaded", den_condition="idle"),
    Ratio("c_loaded_tok", "collection (c) loaded/idle generated tok/s", "llama_server", "llama_server",
          condition="loaded", den_condition="idle"),
    Ratio("model_workers_loaded", "bare model, worker layout, loaded/idle tok/s", "model_workers", "model_workers",
          condition="loaded", den_condition="idle"),
    Ratio("model_inproc_loaded", "bare model, one process, loaded/idle tok/s", "model_inproc", "model_inproc",
          condition="loaded", den_condition="idle"),
    Ratio("b_over_a_qa_loaded", "collection (b)/(a) QA rows/min, loaded", "collector", "sequential", "qa_per_min",
          "loaded"),
)


def miss_notes(report: dict, summary: dict) -> list[str]:
    """For each target missed, what stands in the way, in measured figures (its Ratio's ``why``)."""
    specs = {spec.key: spec for spec in RATIOS}
    notes = []
    for key, r in summary["ratios"].items():
        spec = specs.get(key)
        if r["result"] == "MISS" and spec is not None and spec.why is not None:
            note = spec.why(spec, r, report, summary)
            if note:
                notes.append(note)
    return notes


def index_runs(runs: list[dict]) -> dict[tuple[int, str, str], dict]:
    """``(round, condition, job) -> run`` for the runs that finished (complete or stopped at budget)."""
    return {(r["round"], r["condition"], r["job"]): r for r in runs if r.get("status") in ("complete", "budget")}


def ratio_values(runs: list[dict], spec: Ratio) -> list[float]:
    """The ratio in each round where both sides were measured."""
    idx = index_runs(runs)
    values = []
    for rnd in sorted({r["round"] for r in runs}):
        num = idx.get((rnd, spec.condition, spec.num))
        den = idx.get((rnd, spec.den_condition or spec.condition, spec.den))
        if num is None or den is None or num.get(spec.metric) is None:
            continue
        if spec.weighted:
            den_value, _ = weighted_reference_tok_s(num.get("per_stage", {}), den.get("per_stage", {}))
        else:
            den_value = den.get(spec.metric)
        if den_value:
            values.append(num[spec.metric] / den_value)
    return values


def summarise(runs: list[dict]) -> dict:
    """Per (condition, job): medians of the figures; per ratio: per-round values, mean, target and verdict."""
    out: dict = {"jobs": {}, "ratios": {}}
    for cond in dict.fromkeys(r["condition"] for r in runs):
        for job in dict.fromkeys(r["job"] for r in runs if r["condition"] == cond):
            done = [r for r in runs if r["condition"] == cond and r["job"] == job and r.get("status") in ("complete", "budget")]
            if not done:
                last = [r for r in runs if r["condition"] == cond and r["job"] == job][-1]
                out["jobs"].setdefault(cond, {})[job] = {"status": last.get("status", "failed")}
                continue
            fig = {"status": ",".join(sorted({r["status"] for r in done})), "rounds": len(done)}
            for k in ("gen_tok_s", "qa_per_min", "qa_rows", "llm_calls", "seconds", "completion_tokens",
                      "gen_seconds", "outside_seconds", "prompts"):
                vals = [r[k] for r in done if r.get(k) is not None]
                if vals:
                    fig[k] = statistics.median(vals)
            out["jobs"].setdefault(cond, {})[job] = fig
    for spec in RATIOS:
        values = ratio_values(runs, spec)
        if not values and spec.target is None:
            continue
        mean = statistics.mean(values) if values else None
        verdict = "info" if spec.target is None else ("not measured" if mean is None else
                                                      ("PASS" if mean >= spec.target else "MISS"))
        out["ratios"][spec.key] = {"label": spec.label, "values": values, "mean": mean, "target": spec.target,
                                   "result": verdict}
    return out


def ratio_table(summary: dict) -> str:
    rows = []
    for r in summary["ratios"].values():
        per_round = ", ".join(f"{v:.2f}" for v in r["values"]) if len(r["values"]) > 1 else ""
        rows.append([r["label"], "-" if r["mean"] is None else f"{r['mean']:.2f}", per_round,
                     "" if r["target"] is None else f">= {r['target']:g}", r["result"]])
    return format_table(["ratio", "measured", "per round", "target", "result"], rows, align="lrrll")


def jobs_table(summary: dict, condition: str) -> str:
    header = ["job", "status", "QA rows", "QA/min", "gen tok/s", "prompts sent", "in generate s", "outside s", "seconds"]

    def f(d, k, fmt):
        return "-" if d.get(k) is None else format(d[k], fmt)

    rows = [[job, d.get("status", ""), f(d, "qa_rows", ".0f"), f(d, "qa_per_min", ".1f"), f(d, "gen_tok_s", ".1f"),
             f(d, "llm_calls", ".0f") if KIND.get(job) == "collection" else f(d, "prompts", ".0f"),
             f(d, "gen_seconds", ".0f"), f(d, "outside_seconds", ".0f"), f(d, "seconds", ".0f")]
            for job, d in summary["jobs"].get(condition, {}).items()]
    return format_table(header, rows, align="llrrrrrrr")


def breakdown_table(b_run: dict, ref_run: dict | None) -> str:
    """(b)'s stages against the bare model's rate on the same stage's prompts."""
    rows = []
    for stage, s in b_run["per_stage"].items():
        ref = (ref_run or {}).get("per_stage", {}).get(stage, {})
        rows.append([stage, str(s["prompts"]), str(s["calls"]), f"{s['seconds']:.1f}", str(s["completion_tokens"]),
                     "-" if s["tok_s"] is None else f"{s['tok_s']:.1f}",
                     f"{ref['tok_s']:.1f}" if ref.get("tok_s") else "-",
                     f"{s['tok_s'] / ref['tok_s']:.2f}" if ref.get("tok_s") and s["tok_s"] else "-",
                     f"{s['underfilled_calls']} / {s['underfilled_seconds']:.1f}"])
    return format_table(["stage", "prompts", "calls", "generate s", "tokens", "tok/s (b)", "tok/s bare model",
                         "(b)/bare", "calls under a full batch / s"], rows, align="lrrrrrrrr")


def print_report(report: dict, summary: dict, results_path: Path) -> None:
    docs = report["corpus"]
    print(f"\nCollection benchmark: {len(docs)} documents ({sum(d['words'] for d in docs)} words), hf "
          f"{report.get('hf_dtype')}, (b) = {report.get('workers')} worker process(es) x 1 thread, batch "
          f"{report.get('batch_size')}; one-process layout {report['machine']['torch_threads']} torch threads; "
          f"collector flags: {' '.join(report['collector_flags']) or '(defaults)'}")
    if report.get("server"):
        s = report["server"]
        print(f"(c) llama-server: {s['parallel']} slots, continuous batching, {s['threads']} threads, "
              f"{Path(s['gguf']).name}; api backend max_concurrency {s['parallel']}")
    for cond in report["conditions"]:
        if cond in summary["jobs"]:
            extra = f" (busy loop on cpu {report['background_load']['cpu']}, " \
                    f"{report['background_load'].get('cpu_share', '?')} of a core)" if cond == "loaded" else ""
            print(f"\n{cond}{extra}:")
            print(jobs_table(summary, cond))
    idx = index_runs(report["runs"])
    b = idx.get((0, "idle", "collector"))
    if b:
        print("\n(b) per stage, idle, round 0, against the bare model on the same stage's prompts (worker layout):")
        print(breakdown_table(b, idx.get((0, "idle", "model_workers"))))
    print(f"\nload average before/after: {report['load_before']} / {report.get('load_after', '?')}; "
          f"results -> {results_path}")
    print("\nRatios (formed within each round, then averaged):")
    print(ratio_table(summary))
    for note in miss_notes(report, summary):
        print(f"- MISS {note}")


def reprint(results_path: Path) -> int:
    """The report of a results.json written by an earlier run, finished or not."""
    try:
        report = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {results_path}: {exc}", file=sys.stderr)
        return 2
    print_report(report, summarise(report.get("runs", [])), results_path)
    return 0


