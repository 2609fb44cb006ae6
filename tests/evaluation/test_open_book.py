"""The reading baseline (evaluation/open_book.py): each question asked with its document in the prompt,
cut to the model's context when too long; and its column in evaluate.py's results on the tiny model."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from evaluation import runner as evaluate
from evaluation.open_book import OPEN_BOOK_PROMPT, OpenBook, document_path, fit_document
from utils.io_utils import DataFileError


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def corpus(tmp_path) -> tuple[Path, Path, Path]:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "festival.txt").write_text("The Saltlight Festival is held on Quillmere every June since 1847.\n")
    (docs / "sub" / "sport.md").write_text("# Drennick\n\nDrennick was invented by Bartholomew Ashgrove.\n")
    qa = _write_jsonl(tmp_path / "facts.jsonl", [
        {"question": "Since when is the festival held?", "answers": ["1847"], "doc": "festival.txt"},
        {"question": "Who invented drennick?", "answers": ["Bartholomew Ashgrove"], "doc": "sub/sport.md"},
    ])
    control = _write_jsonl(tmp_path / "ctrl.jsonl", [{"question": "What is 2 + 2?", "answers": ["4"], "doc": "general"}])
    return docs, qa, control


def test_document_path_names_the_question_when_its_document_is_missing(tmp_path, corpus):
    docs = corpus[0]
    assert document_path(docs, "sub/sport.md", "q:2") == docs / "sub" / "sport.md"
    assert document_path(docs / "festival.txt", "festival.txt", "q:1") == docs / "festival.txt"  # one document
    with pytest.raises(DataFileError, match=r"q\.jsonl:3: the question names no document"):
        document_path(docs, None, "q.jsonl:3")
    with pytest.raises(DataFileError, match=r"q\.jsonl:4: its document 'gone\.txt' is not in"):
        document_path(docs, "gone.txt", "q.jsonl:4")
    with pytest.raises(DataFileError, match="not in"):
        document_path(docs / "festival.txt", "sub/sport.md", "q:5")


def test_fit_document_cuts_to_the_first_tokens(smollm2_tokenizer):
    text = "one two three four five six seven eight nine ten"
    assert fit_document(text, smollm2_tokenizer, 100) == (text, 10)
    cut, total = fit_document(text, smollm2_tokenizer, 4)
    assert total == 10 and cut == "one two three four"
    assert fit_document(text, smollm2_tokenizer, 0)[0] == ""


def test_chat_holds_the_document_read_by_the_collectors_reader_and_the_question(tiny_model_dir, corpus):
    docs = corpus[0]
    book = OpenBook(docs, str(tiny_model_dir), max_new_tokens=8, system_prompt="Be brief.")
    chat = book.chat({"question": "Who invented drennick?", "doc": "sub/sport.md", "source": "q:2"})
    assert chat[0] == {"role": "system", "content": "Be brief."}
    # the .md document comes through step1's reader: markdown headings become plain text
    assert chat[1]["content"] == OPEN_BOOK_PROMPT.format(
        document="Drennick\n\nDrennick was invented by Bartholomew Ashgrove.", question="Who invented drennick?")
    assert book.context == 2048 and not book.truncated  # the tiny model's max_position_embeddings


def test_a_document_longer_than_the_context_is_cut_with_a_warning(tiny_model_dir, tmp_path, caplog):
    (tmp_path / "long.txt").write_text(" ".join(f"word{i}" for i in range(3000)) + " THE-END")
    book = OpenBook(tmp_path, str(tiny_model_dir), max_new_tokens=48)
    tok = book.tokenizer
    with caplog.at_level(logging.WARNING):
        chats = book.chats([{"question": "What is the last word?", "doc": "long.txt", "source": "q:1"}] * 2)
    assert "long.txt has" in caplog.text and caplog.text.count("long.txt has") == 1  # warned once per document
    assert "THE-END" not in chats[0][-1]["content"] and chats[0][-1]["content"].endswith("What is the last word?")
    prompt = tok.apply_chat_template(chats[0], add_generation_prompt=True, tokenize=False)
    n = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert book.context - 48 - 16 <= n <= book.context - 48  # the reply still fits, little room wasted
    assert book.truncated["long.txt"]["kept"] < book.truncated["long.txt"]["tokens"]


def test_evaluate_open_book_column(tmp_path, tiny_model_dir, corpus, monkeypatch):
    docs, qa, control = corpus
    out = tmp_path / "eval"
    argv = ["--model_name_or_path", str(tiny_model_dir), "--qa_file", str(qa), "--control_file", str(control),
            "--open_book", str(docs), "--general_text", "none", "--max_new_tokens", "4", "--batch_size", "2",
            "--dtype", "float32", "--cpu_workers", "1", "--output_dir", str(out)]
    assert evaluate.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert [(m["label"], m["kind"]) for m in results["models"]] == [("base", "base"), ("open_book", "open_book")]
    assert set(results["sets"]["facts"]["summary"]) == {"base", "open_book"}
    assert set(results["sets"]["control"]["summary"]) == {"base"}  # no document to read for general knowledge
    assert results["open_book"]["prompt"] == OPEN_BOOK_PROMPT and results["open_book"]["truncated"] == {}
    assert set(results["sets"]["facts"]["by_document"]["festival.txt"]) == {"n", "base", "open_book"}
    from evaluation.report import results_table

    table = results_table(results)
    assert "open_book" in table and "n/a" in table  # its control cells
    assert "with each question's document" in (out / "report.md").read_text()

    # the column is cached like the others; a changed document changes its prompts, so it is asked again
    asked = []
    real = evaluate.column_backend
    monkeypatch.setattr(evaluate, "column_backend", lambda spec, args: asked.append(spec.label) or real(spec, args))
    assert evaluate.main(argv) == 0 and asked == []
    (docs / "festival.txt").write_text("The Saltlight Festival began in 1848.\n")
    assert evaluate.main(argv) == 0 and asked == ["open_book"]


def test_a_question_without_its_document_stops_before_any_model_runs(tmp_path, tiny_model_dir, corpus, monkeypatch,
                                                                    caplog):
    docs, _, _ = corpus
    qa = _write_jsonl(tmp_path / "bad.jsonl", [{"question": "Q?", "answers": ["a"], "doc": "festival.txt"},
                                               {"question": "R?", "answers": ["b"]}])
    monkeypatch.setattr(evaluate, "column_backend", lambda *a: pytest.fail("generated before checking the documents"))
    rc = evaluate.main(["--model_name_or_path", str(tiny_model_dir), "--qa_file", str(qa), "--control_file", "none",
                        "--open_book", str(docs), "--output_dir", str(tmp_path / "o")])
    assert rc == 2 and "bad.jsonl:2: the question names no document" in caplog.text
