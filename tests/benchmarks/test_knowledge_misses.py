"""benchmarks/knowledge_misses.py: each held-out question is split by kind and coverage, and a wrong reply is
classed by what it repeats, on a run folder written here."""
from __future__ import annotations

import json

from benchmarks import knowledge_misses as km

ROWS = [
    ("ferry_town.txt", "The Grey Petrel ferry sails from Harrowgate Sound to Quillmere twice a week."),
    ("ferry_town.txt", "Quillmere's harbour town is Tarrow, on the east of the island."),
    ("glacier_woman.txt", "Ilsabet Norrgaard-Quint received the Halloran Medal in 1951."),
]


def _question(q: str, answers: list[str], doc: str, reply: str) -> dict:
    from evaluation.scoring import contains_match

    return {"question": q, "answers": answers, "doc": doc,
            "predictions": {"updated": {"text": reply, "contains": contains_match(reply, answers)}}}


def _run(tmp_path, questions):
    (tmp_path / "eval").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "eval" / "results.json").write_text(json.dumps({"sets": {"eval_qa": {"questions": questions}}}))
    (tmp_path / "data" / "qa_pairs.jsonl").write_text("".join(
        json.dumps({"conversations": [{"from": "human", "value": "q?"}, {"from": "gpt", "value": a}],
                    "file_name": d}) + "\n" for d, a in ROWS))
    return tmp_path


def test_kinds_coverage_and_what_a_wrong_reply_repeats(tmp_path):
    run = _run(tmp_path, [
        # right, names the subject ("ferry"), covered
        _question("Which ferry goes to Quillmere?", ["Grey Petrel"], "ferry_town.txt",
                  "The Grey Petrel ferry sails from Harrowgate Sound."),
        # wrong: repeats the other fact of its document
        _question("What is the island's harbour town called?", ["Tarrow"], "ferry_town.txt",
                  "The Grey Petrel ferry sails from Harrowgate Sound to Quillmere twice a week."),
        # wrong: repeats another document's answer (a leak); a why question without the subject
        _question("Why did the island build a harbour?", ["for the fleet"], "ferry_town.txt",
                  "Ilsabet Norrgaard-Quint received the Halloran Medal in 1951."),
        # wrong: words of its document recombined; uncovered (no answer holds "1890")
        _question("When did the first ferry sail?", ["1890"], "ferry_town.txt",
                  "Tarrow ferry sails from Quillmere harbour town."),
        # wrong: the model's own words
        _question("How many people live in the town?", ["400"], "ferry_town.txt", "Many people live there happily."),
    ])
    summary = km.analyze(run)
    assert summary["all"] == "1/5"
    assert summary["why/how"] == "0/1"  # "How many" asks a quantity, not a manner
    assert summary["names subject"] == "1/4" and summary["no subject"] == "0/1"  # "ferry" or "town"
    assert summary["covered"] == "1/2" and summary["uncovered"] == "0/3"
    assert (summary["wrong: another fact"], summary["wrong: another doc"], summary["wrong: blend"],
            summary["wrong: own words"]) == ("1", "1", "1", "1")


def test_subject_words_come_from_the_file_name():
    assert km.subject_words("drennick_sport.txt") == {"drennick", "sport"}
    assert km.names_subject("Who invented drennick?", "drennick_sport.txt")
    assert not km.names_subject("Who invented the game?", "drennick_sport.txt")


def test_main_prints_one_row_per_run(tmp_path, capsys):
    run = _run(tmp_path, [_question("Which ferry goes to Quillmere?", ["Grey Petrel"], "ferry_town.txt", "Grey Petrel.")])
    assert km.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert str(run) in out and "1/1" in out
