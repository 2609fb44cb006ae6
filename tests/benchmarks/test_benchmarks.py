"""Benchmarks: their pure parts and flags, and --quick runs of bench_finetune and bench_collect on the tiny model."""
from __future__ import annotations

import json

import torch

from benchmarks import bench_collect, bench_finetune, bench_llama_build
from data_processor.backends.base import LLMBackend, SamplingConfig


# ------------------------------------------------------------------ bench_finetune: pure parts
def test_pad_to_fixed_pads_every_row_to_the_length_and_masks_the_pads():
    feats = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [1, 2, 3, 4, 5, 6], "labels": [1] * 6}]
    batch = bench_finetune.pad_to_fixed(feats, 5, pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0, 0], [1, 2, 3, 4, 5]]  # the long row is cut
    assert batch["labels"].tolist()[0] == [-100, 6, 7, -100, -100]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert bench_finetune.batch_token_counts(batch, feats) == (8, 10)


def test_batch_token_counts_of_a_dynamic_batch():
    from finetuning.data import SFTCollator

    feats = [{"input_ids": [1] * 3, "labels": [1] * 3}, {"input_ids": [1] * 7, "labels": [1] * 7}]
    batch = SFTCollator(pad_token_id=0)(feats)
    assert bench_finetune.batch_token_counts(batch, feats) == (10, 14)


def test_batch_orders_cycle_over_epochs_and_grouping_reduces_padding():
    lengths = [10, 200, 12, 190, 11, 205, 9, 198] * 4
    n_batches, bs = 12, 4  # 48 indices > 32 rows: needs a second epoch
    for variant in ("seed_pad_max", "dynamic_grouped"):
        batches = bench_finetune.batch_orders(variant, lengths, bs, n_batches, seed=0)
        assert len(batches) == n_batches and all(len(b) == bs for b in batches)
        assert sorted(i for b in batches[:8] for i in b) == list(range(32))  # first epoch: each row once

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    grouped = bench_finetune.batch_orders("dynamic_grouped", lengths, bs, 8, seed=0)
    shuffled = bench_finetune.batch_orders("seed_pad_max", lengths, bs, 8, seed=0)
    assert padded(grouped) < padded(shuffled)


def test_summarise_rounds_forms_ratios_within_each_round():
    # Round 1 ran on a machine twice as busy: per-round ratios are both 4, a ratio of medians would not be.
    results = [
        {"round": 0, "variant": "seed_pad_max", "real_tok_s": 100, "executed_tok_s": 800, "pad_fraction": 0.88, "peak_rss_mb": 900},
        {"round": 0, "variant": "packed", "real_tok_s": 400, "executed_tok_s": 450, "pad_fraction": 0.1, "peak_rss_mb": 700},
        {"round": 1, "variant": "seed_pad_max", "real_tok_s": 50, "executed_tok_s": 400, "pad_fraction": 0.88, "peak_rss_mb": 950},
        {"round": 1, "variant": "packed", "real_tok_s": 200, "executed_tok_s": 225, "pad_fraction": 0.1, "peak_rss_mb": 720},
    ]
    table = bench_finetune.summarise_rounds(results)
    assert table["packed"]["ratios_per_round"] == [4.0, 4.0]
    assert table["packed"]["ratio_vs_baseline"] == 4.0
    assert table["seed_pad_max"]["ratio_vs_baseline"] == 1.0
    assert table["packed"]["peak_rss_mb"] == 720


def test_finetune_command_splits_the_global_batch_over_processes(tmp_path):
    args = bench_finetune.parse_args(["--parallel_global_batch", "8", "--parallel_steps", "3"])
    args.data_path = ["a.jsonl", "b.jsonl"]
    cmd1, env1 = bench_finetune.finetune_command("1x2", args, str(tmp_path), 29999)
    cmd2, env2 = bench_finetune.finetune_command("2x1", args, str(tmp_path), 29999)
    assert env1["OMP_NUM_THREADS"] == "2" and env2["OMP_NUM_THREADS"] == "1"
    assert "torch.distributed.run" not in cmd1 and cmd2[cmd2.index("--nproc_per_node") + 1] == "2"
    assert cmd1[cmd1.index("--per_device_train_batch_size") + 1] == "8"
    assert cmd2[cmd2.index("--per_device_train_batch_size") + 1] == "4"
    assert cmd2[cmd2.index("--data_path") + 1] == "a.jsonl,b.jsonl"
    assert cmd2[cmd2.index("--max_steps") + 1] == "3"


def test_bench_finetune_flags_and_quick():
    args = bench_finetune.parse_args(["--quick", "--steps", "5", "--data_path", "a.jsonl", "b.jsonl", "--in_process"])
    assert (args.steps, args.rounds, args.skip_parallel, args.in_process) == (2, 1, True, True)
    assert args.data_path == ["a.jsonl", "b.jsonl"] and args.worker is None
    default = bench_finetune.parse_args([])
    assert default.data_path is None and default.pad_to_length == 512 and not default.skip_parallel
    assert bench_finetune.parse_threads(["--threads", "3", "--worker", "packed"]) == 3


def test_bench_finetune_rejects_unknown_variants(capsys):
    assert bench_finetune.main(["--variants", "packed,turbo", "--in_process"]) == 2


def test_bench_finetune_quick_on_the_tiny_model(tiny_model_dir, tmp_path, capsys):
    rc = bench_finetune.main(["--model_name_or_path", str(tiny_model_dir), "--quick", "--in_process",
                              "--output_dir", str(tmp_path)])
    assert rc == 0
    report = json.loads((tmp_path / "results.json").read_text())
    table = report["batching_summary"]
    assert set(table) == set(bench_finetune.VARIANTS)
    # Mean length ~61 tokens vs 512 slots: fixed-length batches are mostly padding, length-grouped ones are not.
    assert table["seed_pad_max"]["pad_fraction"] > 0.8
    assert table["dynamic_grouped"]["pad_fraction"] < 0.1
    assert table["dynamic_grouped"]["ratio_vs_baseline"] > 1.5
    for run in report["batching"]:
        assert run["real_tokens"] > 0 and all(torch.isfinite(torch.tensor(run["losses"])))
    assert "x seed_pad_max" in capsys.readouterr().out


# ------------------------------------------------------------------ bench_collect
class _Echo(LLMBackend):
    """Answers each prompt with its last message; counts generate() calls and closes."""

    def __init__(self):
        super().__init__()
        self.model_id, self.generate_lists, self.closed = "echo", [], False

    def generate(self, chats, sampling, *, on_result=None, desc="generate"):
        self.generate_lists.append(len(chats))
        self.stats.calls += len(chats)
        self.stats.completion_tokens += 3 * len(chats)
        return [c[-1]["content"] for c in chats]

    def close(self):
        self.closed = True


def _chats(n):
    return [[{"role": "user", "content": f"q{i}"}] for i in range(n)]


def test_bench_backend_sequential_sends_one_prompt_per_generate():
    inner = _Echo()
    inner.stats.calls = 100  # from an earlier run: must not count in this one
    seen = []
    wrapped = bench_collect.BenchBackend(inner, sequential=True)
    out = wrapped.generate(_chats(5), SamplingConfig(), on_result=lambda i, t: seen.append((i, t)))
    assert out == [f"q{i}" for i in range(5)] and seen == list(enumerate(out))
    assert inner.generate_lists == [1] * 5 and wrapped.generate_calls == 5
    assert wrapped.stats.calls == 5 and wrapped.stats.completion_tokens == 15
    wrapped.close()
    assert not inner.closed  # the shared model stays loaded for the next variant


def test_bench_backend_batched_passes_the_whole_list():
    inner = _Echo()
    wrapped = bench_collect.BenchBackend(inner, sequential=False)
    assert wrapped.generate(_chats(7), SamplingConfig()) == [f"q{i}" for i in range(7)]
    assert inner.generate_lists == [7] and wrapped.generate_calls == 1


def test_collect_summarise_ratios_per_round():
    def run(rnd, v, qa, tok):
        return {"round": rnd, "variant": v, "qa_per_min": qa, "gen_tok_s": tok, "llm_calls": 10, "qa_rows": 5,
                "seconds": 1.0, "completion_tokens": 100}

    s = bench_collect.summarise([run(0, "sequential", 2, 10), run(0, "batched", 20, 80), run(0, "api", 10, 40),
                                 run(1, "sequential", 1, 5), run(1, "batched", 10, 40), run(1, "api", 5, 20)])
    assert s["b_over_a_qa_per_min"] == 10 and s["b_over_a_gen_tok_s"] == 8
    assert s["b_over_c_qa_per_min"] == 2 and s["b_over_c_gen_tok_s"] == 2


def test_select_docs_takes_the_first_n_by_name(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("c.txt", "a.txt", "b.txt"):
        (src / name).write_text(f"Document {name}. It has a sentence.\n")
    assert bench_collect.select_docs(str(src), 2, tmp_path / "dst") == ["a.txt", "b.txt"]
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["a.txt", "b.txt"]


def test_quick_mode_limits_documents_and_prompts():
    args = bench_collect.parse_args(["--quick", "--", "--batch_size", "8"])
    assert args.max_docs == 1
    assert args.collect_args[-2:] == ["--batch_size", "8"] and "--max_facts_per_chunk" in args.collect_args
    plain = bench_collect.parse_args(["--max_docs", "3", "--quick", "False"])
    assert plain.max_docs == 3 and plain.collect_args == [] and plain.variants == "sequential,batched,api"


def test_quick_collect_args_are_collector_flags():
    from data_processor.config import parse_args

    cfg = parse_args(["--recipe", "none", *bench_collect.QUICK_COLLECT_ARGS])
    assert (cfg.max_facts_per_chunk, cfg.qa_amount_per_fact, cfg.personas_per_document) == (4, 1, 1)


def test_collect_variants_table():
    s = {"variants": {v: {"qa_rows": 5, "qa_per_min": 12.34, "gen_tok_s": 7.0, "llm_calls": 40, "seconds": 25}
                      for v in ("sequential", "batched")}}
    lines = bench_collect.variants_table(s).splitlines()
    assert lines[0].split()[:3] == ["variant", "QA", "rows"] and set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["sequential", "5", "12.3", "7.0", "40", "25"]


def test_bench_collect_sequential_vs_batched_on_the_tiny_model(tiny_model_dir, tmp_path, capsys):
    rc = bench_collect.main(["--model_name_or_path", str(tiny_model_dir), "--quick", "--variants", "sequential,batched",
                             "--output_dir", str(tmp_path), "--", "--max_new_tokens", "8"])
    assert rc == 0
    report = json.loads((tmp_path / "results.json").read_text())
    seq, bat = (next(r for r in report["runs"] if r["variant"] == v) for v in ("sequential", "batched"))
    # Same documents, same pipeline, fresh caches: the same prompts reach the model either way ...
    assert seq["llm_calls"] == bat["llm_calls"] > 0 and seq["chunks"] == bat["chunks"]
    # ... one generate() per prompt unbatched, one per stage (and repair round) batched.
    assert seq["generate_calls"] == seq["llm_calls"] > bat["generate_calls"]
    assert "batched / sequential: " in capsys.readouterr().out


def test_estimate_budget_counts_real_tokens_with_the_chat_template(smollm2_tokenizer, tmp_path):
    # Regression: transformers 5 returns a BatchEncoding from apply_chat_template, whose len() was 2.
    from acceptance.estimate_budget import count_tokens

    path = tmp_path / "qa.jsonl"
    row = {"conversations": [{"from": "user", "value": "Where is Orrin Skerry?"},
                             {"from": "assistant", "value": "Orrin Skerry lies in the Grellan Sea."}]}
    path.write_text(json.dumps(row) + "\n")
    expected = len(smollm2_tokenizer(smollm2_tokenizer.apply_chat_template(
        [{"role": "user", "content": "Where is Orrin Skerry?"},
         {"role": "assistant", "content": "Orrin Skerry lies in the Grellan Sea."}], tokenize=False),
        add_special_tokens=False)["input_ids"])
    assert count_tokens([str(path)], smollm2_tokenizer) == [expected]
    assert expected > 20


# ------------------------------------------------------------------ bench_llama_build
def test_llama_build_flags_and_summary_rows():
    args = bench_llama_build.parse_args(["--build", "native=/tmp/a", "--build", "avx=/tmp/b", "c=/tmp/c",
                                         "--rounds", "2"])
    assert args.build == ["native=/tmp/a", "avx=/tmp/b", "c=/tmp/c"] and args.rounds == 2
    assert bench_llama_build.parse_args([]).build == []
    runs = [{"build": "installed", "ok": True, "tok_s": t} for t in (10.0, 30.0, 20.0)]
    runs.append({"build": "native", "ok": False, "error": "server died (SIGILL)"})
    rows = bench_llama_build.summary_rows(runs, ["installed", "native"])
    assert rows == [["installed", "3/3", "20.0", "10.0", "30.0", ""],
                    ["native", "0/1", "-", "-", "-", "server died (SIGILL)"]]
