"""Benchmarks: their pure parts and flags, the collection corpus, the background load, llama-server's command
line and build, and a --quick run of bench_finetune on the tiny model; bench_generate's summary and a run on
the tiny model. bench_collect's tests are in tests/benchmarks/bench_collect/."""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmarks import background_load, bench_finetune, bench_generate, bench_llama_build, collect_corpus
from generation.base import SamplingConfig

ROOT = Path(__file__).resolve().parents[2]


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


def test_finetune_command_takes_steps_and_extra_flags(tmp_path):
    args = bench_finetune.parse_args([])
    args.data_path = ["a.jsonl"]
    cmd, _ = bench_finetune.finetune_command("2x1", args, str(tmp_path), 29999, steps=40, extra=("--bf16", "False"))
    assert cmd[cmd.index("--max_steps") + 1] == "40" and cmd[-2:] == ["--bf16", "False"]
    with pytest.raises(ValueError, match="expected 1x2 or 2x1"):
        bench_finetune.layout_shape("4x1")


def test_summarise_precision_uses_each_dtypes_peak_measured_beside_the_run():
    # Round 1 ran twice as slow (busy machine) and measured half the peaks: fractions and ratios hold.
    fast, slow = {"float32": 100e9, "bfloat16": 400e9}, {"float32": 50e9, "bfloat16": 200e9}
    runs = [{"round": 0, "run": "auto", "bf16": True, "real_tok_s": 300, "tokens": 300, "cpu_s": 1, "matmul_peaks": fast,
             "train_loss_mean": 2.0, "train_loss_last": 1.0},
            {"round": 0, "run": "fp32", "bf16": False, "real_tok_s": 200, "tokens": 200, "cpu_s": 2, "matmul_peaks": fast,
             "train_loss_mean": 2.2, "train_loss_last": 1.2},
            {"round": 1, "run": "auto", "bf16": True, "real_tok_s": 150, "tokens": 300, "cpu_s": 1, "matmul_peaks": slow,
             "train_loss_mean": 2.0, "train_loss_last": 0.9},
            {"round": 1, "run": "fp32", "bf16": False, "real_tok_s": 100, "tokens": 200, "cpu_s": 2, "matmul_peaks": slow,
             "train_loss_mean": 2.2, "train_loss_last": 1.1}]
    table = bench_finetune.summarise_precision(runs, flops_per_token=1e8)
    assert table["auto"]["dtype"] == "bfloat16" and table["fp32"]["dtype"] == "float32"
    assert table["auto"]["of_peak"] == pytest.approx(0.075) and table["fp32"]["of_peak"] == pytest.approx(0.2)
    assert table["ratios_per_round"] == [1.5, 1.5] and table["ratio_default_over_fp32"] == 1.5
    assert table["auto"]["tok_per_cpu_s"] == 300 and table["cpu_ratio_default_over_fp32"] == 3.0
    assert table["auto"]["train_loss_last"] == 0.9 and table["fp32"]["train_loss_mean"] == pytest.approx(2.2)


def test_matmul_peaks_of_a_layout_measure_both_dtypes_in_its_processes():
    peaks = bench_finetune.matmul_peaks(threads=1, processes=2)
    assert set(peaks) == {"float32", "bfloat16"} and all(v > 1e8 for v in peaks.values())


def test_base_param_count_loads_no_weights(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert bench_finetune.base_param_count(str(tiny_model_dir)) == sum(p.numel() for p in model.parameters())


def test_bench_finetune_flags_and_quick():
    args = bench_finetune.parse_args(["--quick", "--steps", "5", "--data_path", "a.jsonl", "b.jsonl", "--in_process"])
    assert (args.steps, args.rounds, args.skip_parallel, args.skip_precision, args.in_process) == (2, 1, True, True, True)
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
    assert table["answer_logits"]["pad_fraction"] == table["dynamic_grouped"]["pad_fraction"]  # same batches
    for run in report["batching"]:
        assert run["real_tokens"] > 0 and all(torch.isfinite(torch.tensor(run["losses"])))
    assert "x seed_pad_max" in capsys.readouterr().out


# ------------------------------------------------------------------ the benchmark corpus
def _write_sources(folder):
    folder.mkdir()
    (folder / "a_quillmere.txt").write_text(
        "The Saltlight Festival of Quillmere\n\nThe festival began in 1847 on Quillmere, when Aldous Brannock "
        "floated a lantern. Brannock was a fisherman from Port Ebbering.\n")
    (folder / "b_kessa.txt").write_text("Kessa bread\n\nBakers in Tervane make kessa bread with rye. "
                                        "Odile Faverant wrote about it in 1902.\n")
    return folder


def test_name_variant_differs_per_copy_and_keeps_case():
    variants = [collect_corpus.name_variant("Quillmere", k) for k in range(1, 9)]
    assert len(set(variants)) == 8 and "Quillmere" not in variants
    assert all(v[0] == "Q" and v[1:].islower() for v in variants)
    assert collect_corpus.name_variant("Quillmere", 0) == "Quillmere"


def test_build_corpus_gives_n_distinct_documents_with_names_changed_per_copy(tmp_path):
    src = _write_sources(tmp_path / "src")
    recs = collect_corpus.build_corpus([src], 5, tmp_path / "corpus")
    files = sorted((tmp_path / "corpus").iterdir())
    assert len(recs) == len(files) == 5 and len({r["name"] for r in recs}) == 5
    texts = [f.read_text() for f in files]
    assert len(set(texts)) == 5
    assert [r["copy"] for r in recs] == [0, 0, 1, 1, 2]
    assert (tmp_path / "corpus" / "a_quillmere.txt").read_text() == (src / "a_quillmere.txt").read_text()
    copy1 = (tmp_path / "corpus" / recs[2]["name"]).read_text()
    new = collect_corpus.name_variant("Brannock", 1)
    assert "Brannock" not in copy1 and copy1.count(new) == 2  # every occurrence, the same way
    assert "1847" in copy1 and "festival" in copy1 and "The " in copy1  # only the names change
    assert recs[2]["name"] == f"a_{collect_corpus.name_variant('quillmere', 1)}_c1.txt"
    assert recs[2]["words"] == len(copy1.split()) and recs[2]["renamed"] >= 4


def test_build_corpus_keeps_words_the_tokenizer_knows_whole(tmp_path, smollm2_tokenizer):
    is_common = collect_corpus.common_word_test(smollm2_tokenizer)
    assert is_common("Festival") and not is_common("Quillmere")
    recs = collect_corpus.build_corpus([_write_sources(tmp_path / "src")], 3, tmp_path / "c", is_common=is_common)
    copy1 = (tmp_path / "c" / recs[2]["name"]).read_text()
    assert "Festival" in copy1 and "Quillmere" not in copy1


def test_build_corpus_refuses_an_empty_source(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError):
        collect_corpus.build_corpus([tmp_path / "empty"], 3, tmp_path / "c")


# ------------------------------------------------------------------ the background load
def test_background_load_starts_pinned_and_stops():
    load = background_load.BackgroundLoad()
    with load:
        assert load.running and load.pid
        if hasattr(os, "sched_getaffinity"):
            assert load.cpu == max(os.sched_getaffinity(0))
            deadline = time.monotonic() + 10
            while os.sched_getaffinity(load.pid) != {load.cpu} and time.monotonic() < deadline:
                time.sleep(0.05)  # the child pins itself as it starts
            assert os.sched_getaffinity(load.pid) == {load.cpu}
        time.sleep(0.3)
    assert not load.running and load.proc.returncode is not None
    if load.cpu_share is not None:
        assert load.cpu_share > 0
    load.stop()  # stopping twice is harmless


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the child's state from /proc")
def test_background_load_ends_when_its_parent_is_killed(tmp_path):
    import subprocess

    from tests.conftest import still_running

    script = ("import os, sys\n"
              "from benchmarks.background_load import BackgroundLoad\n"
              "load = BackgroundLoad(-1).start()\n"
              "print(load.pid, flush=True)\n"
              "os.kill(os.getpid(), 9)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60,
                         check=False)
    pid = int(out.stdout.split()[0])

    left = still_running([pid], 10)
    if left:
        os.kill(pid, 9)
    assert not left, "the busy loop outlived the killed benchmark"


# ------------------------------------------------------------------ llama.cpp's llama-server
def test_llama_cpp_server_command_has_slots_continuous_batching_and_threads(tmp_path):
    from finetuning.llama_server import LlamaCppServer, LlamaServer

    server = LlamaCppServer("m.gguf", tmp_path / "log", binary="/opt/llama-server", parallel=8, threads=2, n_ctx=1024,
                            port=1234, alias="smol")
    cmd = server.command()
    assert cmd[0] == "/opt/llama-server" and cmd[cmd.index("--model") + 1] == "m.gguf"

    def flag(name):
        return cmd[cmd.index(name) + 1]

    assert flag("--parallel") == "8" and "--cont-batching" in cmd
    assert flag("--threads") == flag("--threads-batch") == "2"
    assert flag("--ctx-size") == str(8 * 1024)  # llama-server splits it among the slots: 1024 each
    assert flag("--port") == "1234" and flag("--alias") == "smol" and server.base_url == "http://127.0.0.1:1234/v1"
    off = LlamaCppServer("m.gguf", tmp_path / "log", binary="x", cont_batching=False, extra_args=["--no-warmup"]).command()
    assert "--no-cont-batching" in off and off[-1] == "--no-warmup" and "--threads" not in off
    # the Python server's command is what it was
    assert LlamaServer("m.gguf", tmp_path / "log", port=5, threads=3).command()[1:3] == ["-m", "llama_cpp.server"]


def _fake_server(path, body):
    """An executable that takes llama-server's flags and runs ``body`` (a stand-in binary for start/stop tests)."""
    path.write_text(f"#!{sys.executable}\nimport sys\nport = int(sys.argv[sys.argv.index('--port') + 1])\n{body}")
    path.chmod(0o755)
    return path


def test_llama_cpp_server_starts_waits_for_the_models_route_and_stops(tmp_path):
    from finetuning.llama_server import LlamaCppServer

    binary = _fake_server(tmp_path / "llama-server", (
        "import http.server\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200 if self.path == '/v1/models' else 404)\n"
        "        self.end_headers()\n"
        "    def log_message(self, *a):\n"
        "        pass\n"
        "http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()\n"))
    with LlamaCppServer("m.gguf", tmp_path / "log", binary=binary, parallel=4, start_timeout=60) as server:
        server.check_alive()
        proc = server.proc
    assert proc.poll() is not None  # stopped on exit


def test_llama_cpp_server_without_a_build_says_how_to_build(tmp_path, monkeypatch):
    from finetuning import llama_server

    monkeypatch.setenv(llama_server.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="python -m finetuning.llama_server"):
        llama_server.LlamaCppServer("m.gguf", tmp_path / "log")


def test_find_llama_server_wants_the_same_build_flags(tmp_path, monkeypatch):
    from finetuning import llama_server

    monkeypatch.setenv(llama_server.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(llama_server.CMAKE_ARGS_ENV, raising=False)
    folder = llama_server.server_cache_dir("9.9.9")
    assert folder == tmp_path / "9.9.9" and llama_server.find_llama_server("9.9.9") is None
    folder.mkdir()
    binary = folder / "llama-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (folder / "build.json").write_text(json.dumps({"flags": llama_server.portable_cmake_args()}))
    assert llama_server.find_llama_server("9.9.9") == binary
    monkeypatch.setenv(llama_server.CMAKE_ARGS_ENV, "-DGGML_NATIVE=ON")  # other flags: build again
    assert llama_server.find_llama_server("9.9.9") is None


def test_llama_server_build_uses_the_pinned_version_and_portable_flags(monkeypatch):
    import platform

    from finetuning import llama_server

    pin = re.search(r"llama-cpp-python\[server\]==(\S+)", (ROOT / "requirements-test.txt").read_text()).group(1)
    assert llama_server.pinned_llama_cpp_version() == pin
    monkeypatch.delenv(llama_server.CMAKE_ARGS_ENV, raising=False)
    cmd = llama_server.cmake_command("/src/llama.cpp", "/tmp/build")
    assert cmd[:5] == ["cmake", "-S", "/src/llama.cpp", "-B", "/tmp/build"]
    assert "-DGGML_NATIVE=OFF" in cmd and "-DLLAMA_BUILD_SERVER=ON" in cmd and "-DBUILD_SHARED_LIBS=OFF" in cmd
    if platform.machine() == "x86_64":  # shells/install.sh's _ku_llama_cmake_args
        assert {"-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"} <= set(cmd)
    monkeypatch.setenv(llama_server.CMAKE_ARGS_ENV, "-DGGML_NATIVE=OFF -DGGML_AVX=ON")
    assert llama_server.portable_cmake_args() == ["-DGGML_NATIVE=OFF", "-DGGML_AVX=ON"]


def test_llama_server_build_refuses_a_folder_without_llama_cpp(tmp_path):
    from finetuning.llama_server import _llama_cpp_dir

    with pytest.raises(FileNotFoundError):
        _llama_cpp_dir(tmp_path)
    (tmp_path / "vendor" / "llama.cpp" / "tools" / "server").mkdir(parents=True)
    (tmp_path / "vendor" / "llama.cpp" / "CMakeLists.txt").write_text("")
    assert _llama_cpp_dir(tmp_path) == tmp_path / "vendor" / "llama.cpp"


def test_build_llama_server_builds_from_an_sdist_once_and_caches_the_binary(tmp_path, monkeypatch):
    import tarfile

    from finetuning import llama_server

    sdist_dir = tmp_path / "llama_cpp_python-9.9.9"
    (sdist_dir / "vendor" / "llama.cpp" / "tools" / "server").mkdir(parents=True)
    (sdist_dir / "vendor" / "llama.cpp" / "CMakeLists.txt").write_text("")
    sdist = tmp_path / "llama_cpp_python-9.9.9.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        tf.add(sdist_dir, arcname=sdist_dir.name)
    monkeypatch.setenv(llama_server.CACHE_ENV, str(tmp_path / "cache"))
    commands = []

    def fake_cmake(cmd, log, what):  # no compiler: the build step leaves a binary where cmake would
        commands.append(cmd)
        if "--build" in cmd:
            binary = Path(cmd[cmd.index("--build") + 1]) / "bin" / "llama-server"
            binary.parent.mkdir(parents=True)
            binary.write_text("#!/bin/sh\n")
            binary.chmod(0o755)

    monkeypatch.setattr(llama_server, "_run_logged", fake_cmake)
    flags = ["-DGGML_NATIVE=OFF"]
    path = llama_server.build_llama_server("9.9.9", source=sdist, flags=flags)
    assert path == tmp_path / "cache" / "9.9.9" / "llama-server" and os.access(path, os.X_OK)
    configure, build = commands
    assert configure[:3] == ["cmake", "-S", configure[2]] and configure[2].endswith("vendor/llama.cpp")
    assert "-DGGML_NATIVE=OFF" in configure and build[build.index("--target") + 1] == "llama-server"
    assert json.loads((path.parent / "build.json").read_text())["flags"] == flags
    assert not [p for p in path.parent.iterdir() if p.name.startswith("build_")]  # the build tree is gone
    assert llama_server.build_llama_server("9.9.9", source=sdist, flags=flags) == path and len(commands) == 2


@pytest.mark.slow
def test_llama_cpp_server_decodes_requests_in_parallel_slots(default_model_dir, tmp_path):
    import urllib.request

    from generation import build_backend
    from utils.default_model import default_gguf_path
    from finetuning.llama_server import LlamaCppServer, find_llama_server

    binary = find_llama_server()
    if binary is None:
        pytest.skip("llama-server is not built (python -m finetuning.llama_server)")
    with LlamaCppServer(default_gguf_path(), tmp_path / "server.log", binary=binary, parallel=2, n_ctx=1024) as server:
        with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/props", timeout=10) as r:
            assert json.load(r)["total_slots"] == 2
        api = build_backend("api", api_base=server.base_url, api_model=server.alias, max_concurrency=2,
                            show_progress=False)
        replies = api.generate([[{"role": "user", "content": f"Name a colour. ({i})"}] for i in range(4)],
                               SamplingConfig(temperature=0.0, max_new_tokens=8))
        server.check_alive()
    assert len(replies) == 4 and all(replies) and api.stats.completion_tokens > 0


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
    text = "The village of Orlen lies on a bend of the river."  # a text-replay row: no template, no special tokens
    path.write_text(json.dumps(row) + "\n" + json.dumps({"text": text}) + "\n")
    assert count_tokens([str(path)], smollm2_tokenizer) == [expected, len(smollm2_tokenizer(text).input_ids)]


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


def test_bench_generate_summary_is_per_dtype_and_batch_in_first_measured_order():
    runs = [{"dtype": "float32", "batch_size": 32, "tok_s": 70.0}, {"dtype": "bfloat16", "batch_size": 32, "tok_s": 30.0},
            {"dtype": "bfloat16", "batch_size": 32, "tok_s": 34.0}, {"dtype": "float32", "batch_size": 32, "tok_s": 80.0},
            {"dtype": "float32", "batch_size": 1, "tok_s": 9.0}]
    rows = bench_generate.summarise(runs)
    assert [(r["dtype"], r["batch_size"]) for r in rows] == [("float32", 32), ("bfloat16", 32), ("float32", 1)]
    assert rows[0]["median"] == 75.0 and rows[0]["min"] == 70.0 and rows[0]["max"] == 80.0 and rows[0]["rounds"] == 2


def test_bench_generate_on_the_tiny_model(tiny_model_dir, tmp_path, capsys):
    rc = bench_generate.main(["--model_name_or_path", str(tiny_model_dir), "--batch_sizes", "1,2", "--rounds", "2",
                              "--max_new_tokens", "2", "--output_dir", str(tmp_path)])
    assert rc == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert len(report["runs"]) == 2 * 2 * 2  # rounds x batch sizes x dtypes
    assert {(r["dtype"], r["batch_size"]) for r in report["runs"]} == {(d, b) for d in ("float32", "bfloat16") for b in (1, 2)}
    assert sum(r["completion_tokens"] for r in report["runs"]) > 0 and all(r["tok_s"] >= 0 for r in report["runs"])
    assert report["auto_picks"] in ("float32", "bfloat16")
    assert "dtype=auto picks" in capsys.readouterr().out


