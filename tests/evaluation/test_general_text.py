"""The general-text forgetting measure: the shipped sample stays apart from everything replay trains on or
checks (and from the control sets and corpus documents), and the NLL is what a plain per-row loss gives."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation import runner as evaluate
from evaluation.general_text import change_pct, encode_row, load_general_text, mean_nll
from evaluation.scoring import tokens
from utils.io_utils import DataFileError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "general_text.jsonl"


def _grams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = tokens(text)
    return {tuple(words[i: i + n]) for i in range(len(words) - n + 1)}


def _resembled() -> dict[str, list[str]]:
    """Everything replay trains on or checks, and everything that measures knowledge or forgetting."""
    from data_processor.stages.step1_read import load_documents
    from replay.build import read_prompts

    texts = {"replay prompt": read_prompts(ROOT / "examples" / "replay_prompts.txt")}
    checks = [json.loads(line) for line in (ROOT / "examples" / "replay_checks.jsonl").read_text().splitlines()]
    texts["replay check"] = [c["question"] for c in checks] + [a for c in checks for a in c["answers"]]
    texts["replay answer"] = [json.loads(line)["conversations"][1]["value"]
                              for line in (ROOT / "examples" / "replay_answers.jsonl").read_text().splitlines()]
    texts["control question"] = [
        json.loads(line)["question"] + " / " + " / ".join(json.loads(line)["answers"])
        for f in ("examples/control_qa.jsonl", "examples/test_corpus/control_qa.jsonl",
                  "benchmarks/knowledge/dev_extra_control.jsonl")
        for line in (ROOT / f).read_text().splitlines()]
    texts["corpus document"] = [d.text for folder in ("examples/docs", "examples/test_corpus/docs",
                                                      "examples/external_dev/docs")
                                for d in load_documents(ROOT / folder)[0]]
    return texts


def test_the_shipped_sample_shares_no_four_words_with_replay_controls_or_documents():
    """Replay trains on the base model's answers to its prompts and keeps only answers the checks accept; a
    general text that repeated them would be taught to the test, as the control set partly is."""
    rows = load_general_text(SAMPLE)
    assert sum("text" in r for r in rows) >= 40 and sum("prompt" in r for r in rows) >= 10
    sample = {" ".join(r.values()): _grams(" ".join(r.values())) for r in rows}
    for kind, texts in _resembled().items():
        assert texts, kind
        for other in texts:
            theirs = _grams(other)  # an answer of one to three words has none: a shared word is no resemblance
            for text, grams in sample.items():
                shared = grams & theirs
                assert not shared, f"general text shares {shared} with a {kind}: {other[:80]!r} / {text[:60]!r}"


def test_the_sample_names_where_it_came_from():
    first = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"comment"} and "Written by hand for this project" in first["comment"]


@pytest.mark.parametrize("bad", [{"text": ""}, {"prompt": "p?"}, {"text": "t", "extra": 1}, {"question": "q"}])
def test_load_general_text_names_file_and_line(tmp_path, bad):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"comment": "c"}) + "\n" + json.dumps({"text": "fine"}) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataFileError, match=r"g\.jsonl:3: expected"):
        load_general_text(path)
    path.write_text(json.dumps({"comment": "only a comment"}) + "\n")
    with pytest.raises(DataFileError, match="no text or prompt rows"):
        load_general_text(path)


def test_a_prompt_row_scores_its_reply_and_end_of_turn_only(smollm2_tokenizer):
    tok = smollm2_tokenizer
    ids, context = encode_row({"prompt": "Name a colour.", "reply": "Blue is a colour."}, tok)
    assert tok.decode(ids[context:]).startswith("Blue is a colour.") and tok.decode(ids[:context]).endswith("assistant\n")
    assert "Name a colour." in tok.decode(ids[:context])
    text_ids, start = encode_row({"text": "Blue is a colour."}, tok)
    assert start == 1 and tok.decode(text_ids) == "Blue is a colour."


def test_batched_nll_equals_the_per_row_loss(tiny_model_dir):
    """Padding and masking must not change the figure: the batched mean equals the token-weighted mean of the
    model's own loss on each row alone."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = load_general_text(SAMPLE)[:3] + load_general_text(SAMPLE)[-2:]
    total, count = 0.0, 0
    for row in rows:
        ids, context = encode_row(row, tok)
        labels = torch.tensor([[-100] * context + ids[context:]])
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=labels).loss.item()
        total, count = total + loss * (len(ids) - context), count + len(ids) - context
    got = mean_nll(model, tok, rows, batch_size=2)
    assert got["tokens"] == count and got["nll"] == pytest.approx(total / count, rel=1e-4)


def test_change_pct():
    assert change_pct(2.2, 2.0) == 10.0 and change_pct(1.9, 2.0) == -5.0
    assert change_pct(None, 2.0) is None and change_pct(2.0, None) is None


def test_evaluate_reports_general_text_nll_per_model(tmp_path, tiny_model_dir, monkeypatch):
    qa = tmp_path / "q.jsonl"
    qa.write_text(json.dumps({"question": "Who invented drennick?", "answers": ["Ashgrove"]}) + "\n")
    general = tmp_path / "g.jsonl"
    general.write_text("".join(json.dumps(r) + "\n" for r in load_general_text(SAMPLE)[:4] + [
        {"prompt": "Name a colour.", "reply": "Blue."}]))
    out = tmp_path / "eval"
    argv = ["--model_name_or_path", str(tiny_model_dir), "--qa_file", str(qa), "--control_file", "none",
            "--adapters", f"same={tiny_model_dir}", "--general_text", str(general), "--max_new_tokens", "2",
            "--dtype", "float32", "--cpu_workers", "1", "--output_dir", str(out)]
    assert evaluate.main(argv) == 0
    block = json.loads((out / "results.json").read_text())["general_text"]
    assert block["rows"] == 5 and block["tokens"] > 50 and set(block["nll"]) == {"base", "same"}
    assert block["nll"]["same"] == block["nll"]["base"] > 0 and block["change_pct"] == {"same": 0.0}
    from evaluation.report import results_table

    table = results_table(json.loads((out / "results.json").read_text()))
    assert "general text" in table and "+0.00%" in table
    monkeypatch.setattr(evaluate, "column_backend", lambda *a: pytest.fail("the NLL should come from the cache"))
    assert evaluate.main(argv) == 0


def _measures() -> dict[str, list[str]]:
    """Every text that measures knowledge or forgetting, and every corpus document."""
    from data_processor.stages.step1_read import load_documents

    def qa(path: Path) -> list[str]:
        return [" / ".join([row["question"], *row["answers"]])
                for row in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if row]

    controls = ("examples/control_qa.jsonl", "examples/test_corpus/control_qa.jsonl",
                "benchmarks/knowledge/dev_extra_control.jsonl")
    evals = sorted(ROOT.glob("examples/**/eval_qa.jsonl")) + [ROOT / "benchmarks/knowledge" / name for name in
                                                              ("dev_extra_qa.jsonl", "dev_descriptive_qa.jsonl")]
    return {
        "general text": [" ".join(r.values()) for r in load_general_text(SAMPLE)],
        "control question": [t for f in controls for t in qa(ROOT / f)],
        "evaluation question": [t for f in evals for t in qa(f)],
        "corpus document": [d.text for folder in sorted(ROOT.glob("examples/**/docs"))
                            for d in load_documents(folder)[0]],
    }


def test_text_replay_openers_share_no_four_words_with_the_measures_or_documents():
    """Text replay trains on the base model's continuations of these openers: an opener that repeated four words
    of the general-text sample, a control or evaluation question or a document would steer its samples there."""
    from replay.build import read_prompts

    openers = read_prompts(ROOT / "examples" / "text_replay_openers.txt")
    assert len(openers) >= 150 and all(2 <= len(o.split()) <= 6 for o in openers)
    measures = _measures()
    assert len(measures["corpus document"]) >= 15 and len(measures["evaluation question"]) >= 300
    for kind, texts in measures.items():
        theirs = set().union(*map(_grams, texts))
        for opener in openers:
            assert not _grams(opener) & theirs, f"text replay opener {opener!r} shares four words with a {kind}"


def test_shipped_text_replay_samples_rarely_share_four_words_with_the_general_text():
    """The samples are not filtered against the general-text sample (that would fit the method to its own
    measure); this bounds, by chance overlaps of common phrases, how much of the measure they could teach.
    Measured on the shipped file: see docs/finetuning.md (text replay)."""
    from replay.text import BUNDLED

    theirs = set().union(*(_grams(t) for t in _measures()["general text"]))
    samples = [json.loads(line)["text"] for line in BUNDLED.read_text(encoding="utf-8").splitlines()]
    sharing = [s for s in samples if _grams(s) & theirs]
    assert len(sharing) < 0.02 * len(samples), (
        f"{len(sharing)} of {len(samples)} text replay samples share four words with the general-text sample: "
        + "; ".join(sorted({" ".join(g) for s in sharing for g in _grams(s) & theirs})))
