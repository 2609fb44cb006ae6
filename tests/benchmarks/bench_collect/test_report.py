"""benchmarks.bench_collect.report: the weighted reference, ratios per round and targets, the reasons
for a missed target, and the tables."""
from __future__ import annotations

from benchmarks.bench_collect import jobs
from benchmarks.bench_collect import report as bench_report


def test_weighted_reference_uses_the_runs_own_token_mix():
    run = {"facts": {"completion_tokens": 900}, "qa": {"completion_tokens": 100}, "roles": {"completion_tokens": 0}}
    ref = {"facts": {"tok_s": 90.0}, "qa": {"tok_s": 10.0}}
    tok_s, cover = bench_report.weighted_reference_tok_s(run, ref)
    assert tok_s == 1000 / (10 + 10) and cover == 1.0  # 900 tokens in 10 s, 100 in 10 s
    tok_s, cover = bench_report.weighted_reference_tok_s(run, {"facts": {"tok_s": 90.0}})
    assert tok_s == 90.0 and cover == 0.9
    assert bench_report.weighted_reference_tok_s(run, {}) == (None, 0.0)


def _run(rnd, cond, job, tok, qa=None, status="complete", per_stage=None):
    return {"round": rnd, "condition": cond, "job": job, "kind": jobs.KIND[job], "status": status,
            "gen_tok_s": tok, "qa_per_min": qa, "seconds": 10.0, "completion_tokens": 10 * tok,
            "per_stage": per_stage or {}}


def test_collect_summarise_forms_ratios_within_each_round_and_judges_targets():
    b_stages = {"facts": {"completion_tokens": 1000}}
    runs = []
    for rnd, slow in ((0, 1), (1, 2)):  # round 1 ran on a machine twice as busy: per-round ratios hold
        runs += [_run(rnd, "idle", "sequential", 10 / slow, 2 / slow), _run(rnd, "idle", "collector", 60 / slow, 10 / slow,
                                                                            per_stage=b_stages),
                 _run(rnd, "idle", "llama_server", 50 / slow, 9 / slow),
                 _run(rnd, "idle", "model_workers", 999, per_stage={"facts": {"tok_s": 100 / slow}}),
                 _run(rnd, "idle", "replay_default", 40 / slow), _run(rnd, "idle", "eval_default", 40 / slow),
                 _run(rnd, "loaded", "collector", 45 / slow, 7.5 / slow, per_stage=b_stages),
                 _run(rnd, "loaded", "sequential", 1 / slow, status="budget"),
                 _run(rnd, "loaded", "replay_default", 10 / slow), _run(rnd, "loaded", "eval_default", 30 / slow)]
    s = bench_report.summarise(runs)
    r = s["ratios"]
    assert r["b_over_a_qa"]["values"] == [5.0, 5.0] and r["b_over_a_qa"]["result"] == "PASS"
    assert r["b_over_c_tok"]["values"] == [1.2, 1.2] and r["b_over_c_tok"]["result"] == "PASS"
    assert r["b_over_model_workers"]["values"] == [0.6, 0.6] and r["b_over_model_workers"]["result"] == "MISS"
    assert r["b_loaded_qa"]["values"] == [0.75, 0.75] and r["b_loaded_qa"]["result"] == "PASS"
    assert r["replay_default_loaded"]["result"] == "MISS" and r["eval_default_loaded"]["result"] == "PASS"
    assert r["a_loaded_tok"]["values"] == [0.1, 0.1]  # a budget-stopped run's tok/s still counts ...
    assert "b_over_a_qa_loaded" not in r  # ... its QA/min does not; an info ratio with no value is left out
    assert r["b_over_a_tok"]["result"] == "info" and "b_over_model_inproc" not in r
    assert s["jobs"]["loaded"]["sequential"]["status"] == "budget"
    assert s["jobs"]["idle"]["collector"]["gen_tok_s"] == 45.0  # median of 60 and 30


def test_collect_summarise_reports_a_target_it_could_not_measure():
    s = bench_report.summarise([_run(0, "idle", "collector", 60, 10),
                                 {"round": 0, "condition": "idle", "job": "sequential", "status": "failed: boom"}])
    assert s["ratios"]["b_over_a_qa"]["result"] == "not measured"
    assert s["jobs"]["idle"]["sequential"] == {"status": "failed: boom"}
    table = bench_report.ratio_table(s)
    assert table.splitlines()[0].split()[:2] == ["ratio", "measured"] and "not measured" in table


def test_collect_miss_notes_give_measured_reasons():
    b_stages = {"facts": {"completion_tokens": 600, "seconds": 20.0, "underfilled_seconds": 4.0}}
    b = {**_run(0, "idle", "collector", 20, 5, per_stage=b_stages), "seconds": 30.0, "gen_seconds": 20.0,
         "outside_seconds": 10.0, "completion_tokens": 600, "full_batch": 64}
    a_stages = {"facts": {"seconds": 50.0}}
    runs = [{**_run(0, "idle", "sequential", 10, 2.5), "per_stage": a_stages}, b,
            _run(0, "idle", "model_workers", 40, per_stage={"facts": {"tok_s": 40.0}})]
    report = {"runs": runs, "server": {}, "background_load": {"cpu": 1, "cpu_share": 0.99}}
    s = bench_report.summarise(runs)
    notes = bench_report.miss_notes(report, s)
    assert len(notes) == 2  # b/a (2x < 4) and b/bare model (0.5 < 0.7)
    assert "4.0x the tokens/s" in notes[0]
    assert "(a)'s generate() seconds over (b)'s: facts 2.5x; facts is furthest from 4x: 20 s where 4x would " \
           "need 12 s" in notes[0]
    assert "10 s of 30 s (33%) outside generate()" in notes[1] and "75% of the bare model's 40.0" in notes[1]


def test_collect_jobs_table():
    s = {"jobs": {"idle": {"sequential": {"status": "complete", "qa_rows": 5, "qa_per_min": 12.34, "gen_tok_s": 7.0,
                                          "llm_calls": 40, "gen_seconds": 20, "outside_seconds": 5, "seconds": 25}}}}
    lines = bench_report.jobs_table(s, "idle").splitlines()
    assert lines[0].split()[:3] == ["job", "status", "QA"] and set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["sequential", "complete", "5", "12.3", "7.0", "40", "20", "5", "25"]
