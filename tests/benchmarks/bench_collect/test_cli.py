"""benchmarks.bench_collect.cli: flags, --quick, --report, and main() on the tiny model (a --quick run idle
and loaded; a llama-server that dies at start)."""
from __future__ import annotations

import json
import re
import sys

import pytest

from benchmarks.bench_collect import cli
from benchmarks.bench_collect import jobs as bench_jobs


def _fake_server(path, body):
    """An executable that takes llama-server's flags and runs ``body`` (a stand-in binary)."""
    path.write_text(f"#!{sys.executable}\nimport sys\nport = int(sys.argv[sys.argv.index('--port') + 1])\n{body}")
    path.chmod(0o755)
    return path


def test_bench_collect_report_reprints_a_stopped_run(tmp_path, capsys):
    runs = [{"round": 0, "condition": "idle", "job": j, "kind": "collection", "status": "complete", "seconds": s,
             "gen_tok_s": t, "qa_rows": 100, "qa_per_min": q, "completion_tokens": 1000, "prompts": 10, "per_stage": {}}
            for j, s, t, q in (("sequential", 100.0, 10.0, 60.0), ("collector", 20.0, 50.0, 300.0))]
    report = {"corpus": [{"words": 300}], "machine": {"torch_threads": 2}, "collector_flags": [],
              "conditions": ["idle", "loaded"], "load_before": [0.5, 0.5, 0.5], "background_load": {"cpu": 1},
              "runs": runs}  # no load_after, no summary: the run was killed
    path = tmp_path / "results.json"
    path.write_text(json.dumps(report))
    assert cli.main(["--report", str(path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"collection \(b\)/\(a\) QA rows/min, idle\s+5\.00\s+>= 4\s+PASS", out)
    assert cli.main(["--report", str(tmp_path / "missing.json")]) == 2


def test_collect_flags_selection_and_job_order():
    args = cli.parse_args(["--variants", "llama_server,collector,sequential", "--conditions", "loaded,idle"])
    variants, conditions = cli.selected(args)
    assert conditions == ["idle", "loaded"]  # idle first: each loaded block has its idle partner before it
    jobs = bench_jobs.block_jobs(variants, references=True, workloads=True)
    assert jobs[:3] == ["sequential", "collector", "llama_server"]
    assert jobs.index("model_workers") > jobs.index("collector")  # the references replay (b)'s prompts
    assert jobs[-4:] == list(bench_jobs.WORKLOADS)
    assert bench_jobs.block_jobs(["collector"], references=False, workloads=False) == ["collector"]
    assert set(cli.budget_jobs(args)) == set(cli.BUDGET_JOBS)  # not the jobs with targets
    assert not {"collector", "replay_default", "eval_default"} & set(cli.BUDGET_JOBS)
    for bad in (["--variants", "sequential"], ["--variants", "collector,turbo"], ["--conditions", "busy"],
                ["--budget_jobs", "collector,turbo"]):
        with pytest.raises(ValueError):
            cli.selected(cli.parse_args(bad))
    assert cli.main(["--variants", "sequential"]) == 2


def test_quick_mode_limits_documents_and_prompts():
    args = cli.parse_args(["--quick", "--", "--batch_size", "8"])
    assert (args.num_docs, args.replay_prompts, args.eval_questions) == (2, 8, 8)
    assert args.collect_args[-2:] == ["--batch_size", "8"] and "--max_facts_per_chunk" in args.collect_args
    plain = cli.parse_args(["--num_docs", "20", "--quick", "False"])
    assert plain.num_docs == 20 and plain.collect_args == [] and plain.variants == "sequential,collector,llama_server"
    assert plain.conditions == "idle,loaded" and plain.server_parallel == 16 and len(plain.data_path) == 2


def test_quick_collect_args_are_collector_flags():
    from data_processor.config import parse_args

    cfg = parse_args(["--recipe", "none", *cli.QUICK_COLLECT_ARGS])
    assert (cfg.max_facts_per_chunk, cfg.qa_amount_per_fact, cfg.personas_per_document) == (4, 1, 1)


def test_bench_collect_stops_cleanly_when_llama_server_dies(tiny_model_dir, tmp_path, capsys):
    binary = _fake_server(tmp_path / "llama-server", "sys.exit(3)\n")
    rc = cli.main(["--model_name_or_path", str(tiny_model_dir), "--variants", "collector,llama_server",
                   "--num_docs", "1", "--server_binary", str(binary), "--gguf", str(tmp_path / "m.gguf"),
                   "--output_dir", str(tmp_path / "out")])
    assert rc == 2 and "llama-server exited with 3" in capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert report["server"]["command"][0] == str(binary) and report["runs"] == []
    assert report["status"].startswith("llama-server failed")


@pytest.mark.slow
def test_bench_collect_quick_on_the_tiny_model_idle_and_loaded(tiny_model_dir, tmp_path, capsys):
    # --threads 1: the one-process jobs do not stall beside the busy loop (the test's time, not its subject).
    # A loaded budget too short for anything, on the sequential job only: it alone stops.
    rc = cli.main(["--model_name_or_path", str(tiny_model_dir), "--quick",
                   "--variants", "sequential,collector,collector_generate",
                   "--loaded_budget_s", "0.001", "--budget_jobs", "sequential",
                   "--threads", "1", "--replay_prompts", "4", "--eval_questions", "4", "--replay_new_tokens", "8",
                   "--eval_new_tokens", "8", "--output_dir", str(tmp_path), "--", "--max_new_tokens", "8"])
    assert rc == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert len(report["corpus"]) == 2 and len(list((tmp_path / "docs").iterdir())) == 2
    runs = {(r["condition"], r["job"]): r for r in report["runs"]}
    jobs = ["sequential", "collector", "collector_generate", *bench_jobs.REFERENCES, *bench_jobs.WORKLOADS]
    assert set(runs) == {(c, j) for c in ("idle", "loaded") for j in jobs}
    assert runs["loaded", "sequential"]["status"] == "budget" and runs["loaded", "sequential"]["qa_rows"] is None
    assert all(r["status"] == "complete" for k, r in runs.items() if k != ("loaded", "sequential")), \
        [r["status"] for r in runs.values()]
    seq, bat = runs["idle", "sequential"], runs["idle", "collector"]
    # Same documents, same pipeline, fresh caches: the same prompts reach the model either way ...
    assert seq["llm_calls"] == bat["llm_calls"] == runs["idle", "collector_generate"]["llm_calls"] > 0
    assert seq["chunks"] == bat["chunks"]
    # ... one generate() per prompt unbatched, one per stage (and repair round) batched.
    assert seq["generate_calls"] == seq["llm_calls"] > bat["generate_calls"]
    assert bat["full_batch"] == report["workers"] * report["batch_size"]
    ref = runs["idle", "model_workers"]
    assert set(ref["per_stage"]) <= set(bat["per_stage"]) and ref["completion_tokens"] > 0
    assert runs["idle", "replay_default"]["prompts"] == 4 and runs["idle", "eval_default"]["prompts"] == 4
    ratios = report["summary"]["ratios"]
    assert ratios["b_over_generate_qa"]["result"] == "info" and len(ratios["b_over_generate_qa"]["values"]) == 1
    for key in ("b_over_a_qa", "b_over_model_workers", "b_loaded_qa", "replay_default_loaded", "eval_default_loaded"):
        assert ratios[key]["result"] in ("PASS", "MISS") and len(ratios[key]["values"]) == 1
    assert ratios["b_over_c_tok"]["result"] == "not measured"  # no llama-server variant here
    assert report["background_load"]["cpu_share_per_block"] and report["load_after"]
    # The ratio table comes last (then only the notes on missed targets), each target with a verdict.
    last = capsys.readouterr().out.split("results ->")[-1].split("Ratios (formed within each round")[-1]
    assert "collection (b)/(a) QA rows/min, idle" in last and "evaluation, default layout, loaded/idle" in last
    assert re.search(r"\b(PASS|MISS)\b", last) and "collection (b) per stage" not in last
