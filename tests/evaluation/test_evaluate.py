"""evaluate.py end to end on the tiny model with a tiny LoRA adapter, plus its pure parts
(QA loading, report building) and the shipped sample QA files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation import runner as evaluate
from evaluation.report import build_set_result, render_markdown, results_table
from evaluation.scoring import score_prediction
from utils.io_utils import DataFileError

ROOT = Path(__file__).resolve().parents[2]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter with non-zero B matrices, so it really changes the tiny model's replies."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    cfg = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, cfg)
    out = tmp_path_factory.mktemp("adapter") / "my_lora"
    peft_model.save_pretrained(out)
    return out


@pytest.fixture()
def qa_files(tmp_path) -> tuple[Path, Path]:
    knowledge = _write_jsonl(tmp_path / "facts.jsonl", [
        {"question": "What is the capital of Quillmere?", "answers": ["Port Ebbering", "Ebbering"]},
        {"question": "Who invented drennick?", "answers": "Bartholomew Ashgrove"},  # a bare string is accepted
        # a collector row: the user turn is the question, the assistant turn the answer
        {"id": "x", "conversations": [{"from": "user", "value": "When did the festival start?"},
                                      {"from": "assistant", "value": "In 1847."}], "fact": "f"},
    ])
    control = _write_jsonl(tmp_path / "ctrl.jsonl", [
        {"question": "What is the capital of France?", "answers": ["Paris"]},
        {"question": "What is 2 + 2?", "answers": ["4", "four"]},
    ])
    return knowledge, control


# -- pure parts ------------------------------------------------------------------------------------
def test_load_qa_file_formats(qa_files):
    rows = evaluate.load_qa_file(str(qa_files[0]))
    assert [r["question"] for r in rows] == [
        "What is the capital of Quillmere?", "Who invented drennick?", "When did the festival start?"]
    assert rows[1]["answers"] == ["Bartholomew Ashgrove"]
    assert rows[2]["answers"] == ["In 1847."]
    assert rows[2]["source"].endswith("facts.jsonl:3")


@pytest.mark.parametrize("bad, message", [
    ({"question": "Q?", "answers": []}, "answers"),
    ({"question": "", "answers": ["a"]}, "question"),
    ({"conversations": [{"from": "assistant", "value": "a"}]}, "user turn"),
    ({"text": "no QA here"}, "neither"),
])
def test_load_qa_file_errors_name_file_and_line(tmp_path, bad, message):
    path = _write_jsonl(tmp_path / "bad.jsonl", [{"question": "ok?", "answers": ["ok"]}, bad])
    with pytest.raises(DataFileError, match=rf"bad\.jsonl:2: .*{message}"):
        evaluate.load_qa_file(str(path))


def test_arguments_comma_lists_repeats_and_none(tmp_path):
    args = evaluate.parse_args(["--qa_file", "a.jsonl,b.jsonl", "--qa_file", "c.jsonl", "--control_file", "none"])
    assert args.qa_file == ["a.jsonl", "b.jsonl", "c.jsonl"]
    assert args.control_file is None
    assert evaluate.parse_args([]).qa_file == [evaluate.DEFAULT_QA_FILE]
    with pytest.raises(ValueError):
        evaluate.parse_args(["--judge_model_type", "openai"])


def test_model_specs_kinds_and_labels(tmp_path, tiny_model_dir, tiny_adapter):
    args = evaluate.parse_args(["--adapters", str(tiny_adapter), f"merged={tiny_model_dir}", f"{tiny_adapter}"])
    specs = evaluate.model_specs(args)
    assert [(s.label, s.kind) for s in specs] == [
        ("base", "base"), ("my_lora", "adapter"), ("merged", "merged"), ("my_lora_2", "adapter")]
    with pytest.raises(FileNotFoundError, match="neither a PEFT adapter"):
        evaluate.model_specs(evaluate.parse_args(["--adapters", str(tmp_path)]))


def test_report_flips_deltas_and_table():
    questions = [{"question": f"q{i}", "answers": [a], "source": f"f:{i}"} for i, a in enumerate(["x", "y", "z"])]
    questions.append({"question": "q3", "answers": ["w"], "source": "f:3"})
    preds = {"base": ["x", "no", "no", "w"], "upd": ["no", "y", "z", "it is w"]}
    scores = {k: [score_prediction(p, q["answers"]) for p, q in zip(v, questions)] for k, v in preds.items()}
    block = build_set_result("knowledge", ["f"], questions, preds, scores)
    assert block["summary"]["base"]["contains"] == pytest.approx(2 / 4, abs=1e-3)
    assert block["delta"]["upd"]["contains"] == pytest.approx(1 / 4, abs=1e-3)
    assert block["flips"]["upd"] == {"gained": [1, 2], "lost": [0], "kept": [3]}
    assert "base" not in block["delta"]
    results = {"models": [{"label": "base", "model": "m", "adapter": None}, {"label": "upd", "model": "m", "adapter": "a"}],
               "sets": {"facts": block}}
    table = results_table(results)
    assert "facts (knowledge, n=4)" in table and "+0.250" in table
    md = render_markdown(results, table)
    assert "### upd vs base: wrong → right (2)" in md and "### upd vs base: right → wrong (1)" in md
    assert "### upd vs base: right in both (1)" in md and "| 3 | q3 | w | w | it is w |" in md
    assert "| 0 | q0 | x | x | no |" in md
    with pytest.raises(ValueError):
        build_set_result("knowledge", ["f"], questions, {"base": ["x"]}, {"base": scores["base"][:1]})
    # with judge verdicts the table grows a judge column, and its delta is reported
    from dataclasses import replace

    judged = {k: [replace(sc, judge=j) for sc, j in zip(v, (True, False, None, None))] for k, v in scores.items()}
    jblock = build_set_result("knowledge", ["f"], questions, preds, judged)
    assert jblock["summary"]["base"]["judge"] == 0.5 and jblock["delta"]["upd"]["judge"] == 0.0
    jtable = results_table({**results, "sets": {"facts": jblock}})
    assert "judge" in jtable.splitlines()[1] and "0.500" in jtable


def test_parse_verdict():
    assert evaluate.parse_verdict("CORRECT") is True
    assert evaluate.parse_verdict("Incorrect.") is False
    assert evaluate.parse_verdict("  correct, the reply names Paris") is True
    assert evaluate.parse_verdict("I think so") is None


def test_sample_qa_files_are_well_formed():
    docs = {p.name for p in (ROOT / "examples" / "docs").iterdir()}
    assert any(name.endswith(".docx") for name in docs)
    for name, minimum in (("eval_qa.jsonl", 30), ("control_qa.jsonl", 30)):
        rows = evaluate.load_qa_file(str(ROOT / "examples" / name))
        assert len(rows) >= minimum
        assert len({r["question"] for r in rows}) == len(rows), f"{name} has duplicate questions"
    raw = [json.loads(line) for line in (ROOT / "examples" / "eval_qa.jsonl").read_text().splitlines()]
    assert {r["doc"] for r in raw} == docs, "every sample document gets questions, and only those"


class _ScriptedJudge:
    """A judge backend that calls a reply correct when it contains the first accepted answer."""

    def __init__(self, **kwargs):
        self.kwargs, self.closed = kwargs, False

    def generate(self, chats, sampling):
        assert sampling.temperature == 0.0
        outs = []
        for chat in chats:
            text = chat[-1]["content"]
            first = text.split("Accepted answers: ")[1].split(" | ")[0].split("\n")[0]
            reply = text.split("Student's reply: ")[1].split("\n")[0]
            outs.append("CORRECT" if first.lower() in reply.lower() else ("INCORRECT" if reply != "?" else "hmm"))
        return outs

    def close(self):
        self.closed = True


def test_llm_judge_through_the_backend_factory(monkeypatch):
    built = []

    def fake_build_backend(model_type, **kwargs):
        built.append((model_type, kwargs))
        return _ScriptedJudge(**kwargs)

    monkeypatch.setattr(evaluate, "build_backend", fake_build_backend)
    args = evaluate.parse_args(["--judge_model_type", "api", "--judge_model", "judge-x",
                                "--judge_api_base", "http://h:1/v1", "--judge_kwargs", '{"max_concurrency": 2}'])
    qs = [{"question": "Capital of France?", "answers": ["Paris"], "source": "s:1"},
          {"question": "2+2?", "answers": ["4"], "source": "s:2"}]
    sets = [evaluate.EvalSet("control", "control", ["s"], qs)]
    preds = {"control": {"base": ["It is Paris.", "?"], "upd": ["Lyon", "4"]}}
    verdicts = evaluate.judge_predictions(args, sets, preds)
    assert built == [("api", {"max_concurrency": 2, "api_model": "judge-x", "api_base": "http://h:1/v1"})]
    assert verdicts == {"control": {"base": [True, None], "upd": [False, True]}}
    hf_args = evaluate.parse_args(["--judge_model_type", "hf", "--judge_model", "some/path"])
    evaluate.build_judge(hf_args)
    assert built[-1] == ("hf", {"model_name_or_path": "some/path"})


def test_every_column_is_built_by_the_generation_factory():
    """Each kind of column maps to the factory's arguments, which the factory accepts."""
    from generation import build_backend

    args = evaluate.parse_args(["--recipe", "none", "--model_name_or_path", "base/m", "--batch_size", "4", "--dtype",
                                "float32", "--cpu_workers", "2", "--served_kwargs", '{"max_concurrency": 3}'])
    hf = {"batch_size": 4, "dtype": "float32", "workers": "2", "show_progress": True}
    cases = [
        (evaluate.ModelSpec("base", "base/m"), ("hf", {"model_name_or_path": "base/m", **hf})),
        (evaluate.ModelSpec("upd", "base/m", adapter="a/dir", kind="adapter"),
         ("hf", {"model_name_or_path": "base/m", "adapter_path": "a/dir", "merge_adapter": True, **hf})),
        (evaluate.ModelSpec("m", "merged/dir", kind="merged"), ("hf", {"model_name_or_path": "merged/dir", **hf})),
        (evaluate.ModelSpec("s", "http://h:1/v1", kind="served", api_model="x"),
         ("api", {"api_base": "http://h:1/v1", "api_model": "x", "show_progress": True, "max_concurrency": 3})),
    ]
    for spec, expected in cases:
        assert evaluate.backend_args(spec, args) == expected
        model_type, kwargs = expected
        backend = build_backend(model_type, **kwargs)  # unloaded: nothing is read or asked
        assert type(backend).__module__ == f"generation.{model_type}"


# -- end to end on the tiny model ------------------------------------------------------------------
def test_evaluate_end_to_end(tmp_path, tiny_model_dir, tiny_adapter, qa_files, monkeypatch):
    out = tmp_path / "eval"
    argv = ["--model_name_or_path", str(tiny_model_dir), "--qa_file", str(qa_files[0]),
            "--control_file", str(qa_files[1]), "--adapters", str(tiny_adapter), f"same={tiny_model_dir}",
            "--max_new_tokens", "6", "--batch_size", "2", "--dtype", "float32", "--output_dir", str(out)]
    assert evaluate.main(argv) == 0

    results = json.loads((out / "results.json").read_text())
    assert [m["label"] for m in results["models"]] == ["base", "my_lora", "same"]
    assert results["headline_metric"] == "contains"
    assert set(results["sets"]) == {"facts", "control"}
    assert results["sets"]["control"]["kind"] == "control"
    for s in results["sets"].values():
        assert set(s["summary"]) == {"base", "my_lora", "same"}
        assert set(s["delta"]) == set(s["flips"]) == {"my_lora", "same"}
        for q in s["questions"]:
            assert set(q["predictions"]) == {"base", "my_lora", "same"}
            assert set(q["predictions"]["base"]) >= {"text", "exact", "contains", "f1"}
    facts = results["sets"]["facts"]["questions"]
    # A merged copy of the base must answer exactly like the base, which (because the base column is
    # merged into its own copy of the base) also checks that no LoRA weight leaked into the base column.
    assert [q["predictions"]["same"]["text"] for q in facts] == [q["predictions"]["base"]["text"] for q in facts]
    assert [q["predictions"]["my_lora"]["text"] for q in facts] != [q["predictions"]["base"]["text"] for q in facts]
    report = (out / "report.md").read_text()
    assert "## facts (knowledge, 3 questions)" in report and "my_lora vs base" in report
    replies = [p for p in (out / "predictions").glob("*.json") if not p.name.endswith(".stamp.json")]
    assert len(replies) == 6

    # Re-running reuses every cached prediction: no model is loaded or asked anything.
    def boom(*a, **k):
        raise AssertionError("should have used the cache")

    monkeypatch.setattr(evaluate, "column_backend", boom)
    assert evaluate.main(argv) == 0
    assert json.loads((out / "results.json").read_text())["sets"] == results["sets"]


def test_base_column_after_adapter_is_the_base(tiny_model_dir, tiny_adapter):
    """Asking the base again after an adapter was injected gives the base's replies, not the adapter's."""
    args = evaluate.parse_args(["--model_name_or_path", str(tiny_model_dir), "--adapters", str(tiny_adapter),
                                "--max_new_tokens", "5", "--dtype", "float32"])
    from generation.base import SamplingConfig

    base, lora = evaluate.model_specs(args)
    chats = [[{"role": "user", "content": "Who invented drennick?"}], [{"role": "user", "content": "Hello"}]]
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=5)

    def ask(spec):
        backend = evaluate.column_backend(spec, args)
        try:
            return backend.generate(chats, sampling)
        finally:
            backend.close()

    first = ask(base)
    assert ask(lora) != first
    assert ask(base) == first


def test_merged_adapter_answers_like_the_unmerged_adapter(tiny_model_dir, tiny_adapter):
    """evaluate.py merges each adapter before generating (speed); the merge must not change the replies."""
    from generation.base import SamplingConfig
    from generation.hf import HFBackend

    chats = [[{"role": "user", "content": "Who invented drennick?"}], [{"role": "user", "content": "Hello"}]]
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=6)
    unmerged = HFBackend(str(tiny_model_dir), dtype="float32", adapter_path=str(tiny_adapter), show_progress=False)
    merged = HFBackend(str(tiny_model_dir), dtype="float32", adapter_path=str(tiny_adapter), merge_adapter=True,
                       show_progress=False)
    merged.load()
    assert not any("lora" in name for name, _ in merged.model.named_modules())
    assert merged.generate(chats, sampling) == unmerged.generate(chats, sampling)


def test_worker_processes_answer_like_one_process(tiny_model_dir):
    """The CPU layout (worker processes of one thread, batches split among them) changes nothing in the replies."""
    from generation.base import SamplingConfig
    from generation.hf import HFBackend

    chats = [[{"role": "user", "content": f"Question number {i}: who invented drennick?" + " more" * i}]
             for i in range(7)]
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=6)
    one = HFBackend(str(tiny_model_dir), dtype="float32", workers=1, batch_size=4, show_progress=False)
    two = HFBackend(str(tiny_model_dir), dtype="float32", workers=2, batch_size=4, show_progress=False)
    seen = []
    try:
        assert two.num_workers() == 2 and one.num_workers() == 1
        assert two.generate(chats, sampling, on_result=lambda i, t: seen.append(i)) == one.generate(chats, sampling)
        assert sorted(seen) == list(range(7)) and two.stats.calls == 7 and two.stats.completion_tokens > 0
        assert two.generate(chats[:2], sampling) == one.generate(chats[:2], sampling)  # the pool is reused
    finally:
        two.close()
        one.close()


def test_missing_qa_file_exits_with_error(tmp_path, tiny_model_dir, caplog):
    rc = evaluate.main(["--model_name_or_path", str(tiny_model_dir), "--qa_file", str(tmp_path / "nope.jsonl"),
                        "--output_dir", str(tmp_path / "o")])
    assert rc == 2
    assert "nope.jsonl" in caplog.text
