"""benchmarks/knowledge_probe.py: the training row that probes a held-out question, and the outcome."""
from benchmarks.knowledge_probe import OUTCOMES, nearest_row, outcome

PAIRS = [
    ("When was the festival first held?", "The Saltlight Festival was first held in 1847."),
    ("In what year did the people of Quillmere first hold the Saltlight Festival?", "It was first held in 1847."),
    ("Who floated the first lantern?", "Aldous Brannock floated the first salt lantern."),
]


def test_the_probe_is_the_closest_question_whose_answer_holds_an_expected_answer():
    q = "In which year did Quillmere's people first hold their Saltlight Festival?"
    assert nearest_row(q, ["1847"], PAIRS) == PAIRS[1]
    assert nearest_row(q, ["Brannock"], PAIRS) == PAIRS[2]  # the only row that holds the answer, however far
    assert nearest_row(q, ["1850"], PAIRS) is None


def test_outcomes():
    assert outcome(True, True) == OUTCOMES[0]
    assert outcome(False, True) == OUTCOMES[1]
    assert outcome(False, False) == outcome(True, False) == OUTCOMES[2]
    assert outcome(False, None) == OUTCOMES[3]


def test_training_pairs_leave_out_plain_text_rows(tmp_path):
    import json

    from benchmarks.knowledge_probe import training_pairs

    path = tmp_path / "qa_pairs.jsonl"
    turns = [{"from": "user", "value": PAIRS[0][0]}, {"from": "assistant", "value": PAIRS[0][1]}]
    rows = [{"id": "a", "conversations": turns},
            {"id": "b", "text": "Quillmere\n\nThe Saltlight Festival was first held in 1847.", "role": "statement"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert training_pairs(path) == [PAIRS[0]]
