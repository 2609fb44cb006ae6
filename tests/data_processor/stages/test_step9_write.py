import json

from data_processor.stages.step9_write import (
    JsonlWriter,
    OutputSet,
    is_eval_fact,
    pair_key,
    repair_tail,
    row_id,
    text_row,
    train_row,
)
from finetuning.data import load_rows
from utils.data_formats import is_plain_text


def _row(q, a, fact="f", role="", file_name="a.txt", chunk_id="a.txt#0"):
    return train_row(question=q, answer=a, fact=fact, theme="t", role=role, file_name=file_name, chunk_id=chunk_id)


def test_ids_are_stable_and_unique_across_files():
    a = _row("Q?", "A.", file_name="a.txt")
    assert a["id"] == _row("Q?", "A.", file_name="a.txt")["id"]  # same content, same id (any run)
    assert a["id"] != _row("Q?", "A.", file_name="b.txt", chunk_id="b.txt#0")["id"]
    assert a["id"] != _row("Q?", "A.", role="a teacher")["id"]
    assert len({row_id(str(i)) for i in range(5000)}) == 5000


def test_dedup_is_case_and_punctuation_insensitive(tmp_path):
    out = OutputSet(tmp_path / "o.jsonl", None)
    assert out.add_train(_row("What is X?", "X is 1."))
    assert not out.add_train(_row("what is x", "X is 1", fact="other"))
    assert out.add_train(_row("What is X?", "X is 2."))
    assert pair_key("A  b?", "C.") == pair_key("a b", "c")
    out.close()
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 2


def test_partial_last_line_is_cut_and_written_ids_are_not_rewritten(tmp_path):
    path = tmp_path / "o.jsonl"
    w = JsonlWriter(path)
    r1, r2 = _row("Q1?", "A1."), _row("Q2?", "A2.")
    assert w.write(r1) and w.write(r2)
    w.close()
    with open(path, "ab") as fh:  # a kill in the middle of a write
        fh.write(b'{"id": "x", "conversa')
    w = JsonlWriter(path)
    assert w.truncated_bytes == len(b'{"id": "x", "conversa')
    assert not w.write(r1) and w.write(_row("Q3?", "A3."))
    w.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["conversations"][0]["value"] for r in rows] == ["Q1?", "Q2?", "Q3?"]


def test_repair_tail_cases(tmp_path):
    p = tmp_path / "x.jsonl"
    assert repair_tail(p) == 0  # missing
    p.write_bytes(b"")
    assert repair_tail(p) == 0
    p.write_bytes(b"no newline at all")
    assert repair_tail(p) == 17 and p.read_bytes() == b""
    p.write_bytes(b'{"a": 1}\n' + b"y" * 200_000)  # a partial line longer than the read block
    assert repair_tail(p) == 200_000 and p.read_bytes() == b'{"a": 1}\n'


def test_eval_questions_never_enter_training(tmp_path):
    from data_processor.stages.step9_write import eval_row

    out = OutputSet(tmp_path / "o.jsonl", tmp_path / "o.eval.jsonl")
    ev = eval_row(question="How old is X?", answer="X is 5.", fact="f", theme="t", role="r", file_name="a.txt",
                  chunk_id="a.txt#0", train_question="What age is X?")
    assert out.add_eval(ev)
    assert not out.add_train(_row("How old is X?", "X is five years old."))  # same question, other answer
    assert out.add_train(_row("What age is X?", "X is 5."))
    out.close()
    out = OutputSet(tmp_path / "o.jsonl", tmp_path / "o.eval.jsonl")  # the sets survive a restart
    assert not out.add_train(_row("how old is x", "Five."))
    out.close()


def test_eval_fact_choice_is_seeded_and_proportional():
    picks = [is_eval_fact(1, "c#0", f"fact {i}", 0.25) for i in range(2000)]
    assert picks == [is_eval_fact(1, "c#0", f"fact {i}", 0.25) for i in range(2000)]
    assert 0.2 < sum(picks) / len(picks) < 0.3
    assert picks != [is_eval_fact(2, "c#0", f"fact {i}", 0.25) for i in range(2000)]
    assert not any(is_eval_fact(1, "c#0", f"fact {i}", 0.0) for i in range(100))


def test_write_rows_holds_out_one_rewrite_per_held_out_pair_or_one_span_of_rule_questions(tmp_path):
    from data_processor.stages.step4_facts import Fact
    from data_processor.stages.step5_qa import QAPair
    from data_processor.stages.step7_diversify import Rewrite
    from data_processor.stages.step8_rule_rows import RuleItem
    from data_processor.stages.step9_write import write_rows

    with_rewrites = Fact("a.txt#0", "a.txt", 0, "The bridge opened in 1911.", "Bridge")
    rules_only = Fact("a.txt#0", "a.txt", 1, "Ada Pellingham built it in Castelbrook.", "Bridge")
    pairs = [QAPair(with_rewrites, 0, "When did the bridge open?", "In 1911.")]
    rewrites = [Rewrite(0, "a tourist", "What year did the bridge open?"), Rewrite(0, "a child", "How old is the bridge?")]
    items = [RuleItem("wh", q, rules_only.text, "a.txt", "a.txt#0", "Bridge", rules_only.text, span)
             for q, span in (("Who built it in Castelbrook?", "Ada Pellingham"), ("Which person built it?", "Ada Pellingham"),
                             ("Ada Pellingham built it where?", "Castelbrook"))]

    def run(name, **kw):
        out = OutputSet(tmp_path / f"{name}.jsonl", tmp_path / f"{name}.eval.jsonl")
        write_rows(out, pairs, rewrites, items, seed=0, **kw)
        out.close()
        return ([json.loads(x) for x in open(tmp_path / f"{name}.jsonl")],
                [json.loads(x) for x in open(tmp_path / f"{name}.eval.jsonl")])

    train, held = run("none", fact_answers=False, eval_fraction=0.0)
    assert held == [] and len(train) == 6 and train[0]["conversations"][1]["value"] == "In 1911."
    train, held = run("all", fact_answers=True, eval_fraction=0.999999)
    # one of the two rewrites, answered as generated; the first asked span's two questions, answered by the span
    assert [(e["role"], e["answers"]) for e in held] == [(held[0]["role"], ["1911"]), ("wh", ["Ada Pellingham"]),
                                                         ("wh", ["Ada Pellingham"])]
    assert held[0]["role"] in ("a tourist", "a child") and held[0]["train_question"] == "When did the bridge open?"
    assert [r["role"] for r in train] == ["", ({"a tourist", "a child"} - {held[0]["role"]}).pop(), "wh"]
    assert all(r["conversations"][1]["value"] == r["fact"] for r in train)  # fact_answers: every answer its fact


def _text(text, chunk_id="a.txt#0"):
    return text_row(text=text, theme="t", role="statement", file_name="a.txt", chunk_id=chunk_id)


def test_text_rows_dedupe_by_their_text_and_survive_a_resume(tmp_path):
    path = tmp_path / "o.jsonl"
    out = OutputSet(path, tmp_path / "o.eval.jsonl")
    assert out.add_train(_row("What is X?", "X is 1."))
    assert out.add_train(_text("X\n\nX is 1. Y is 2."))
    assert out.add_train(_text("X\n\nY is 2. X is 1."))  # another order: another row (a question row would clash)
    assert not out.add_train(_text("x\n\nX is 1.  Y is 2", chunk_id="a.txt#1"))  # same text, other chunk
    assert out.written == {"train": 3, "eval": 0, "duplicates": 1, "already_there": 0}
    out.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(rows[1]) == {"id", "text", "fact", "theme", "role", "file_name", "chunk_id"}
    assert [is_plain_text(r.messages) for r in load_rows(path)] == [False, True, True]

    out = OutputSet(path, tmp_path / "o.eval.jsonl")  # resumed: the texts are known, a text row holds no question
    assert out.train_questions == {"what is x"} and len(out.pairs) == 1
    assert not out.add_train(_text("X\n\nX is 1. Y is 2."))  # its id is in the file
    assert not out.add_train(_text("X\n\nX is 1. Y is 2!", chunk_id="a.txt#2"))  # its text is
    assert out.add_train(_text("X\n\nZ is 3."))
    assert out.written == {"train": 1, "eval": 0, "duplicates": 1, "already_there": 1}
    out.close()


def test_write_rows_writes_statements_as_text_rows_never_held_out(tmp_path):
    from data_processor.stages.step8_rule_rows import RuleItem
    from data_processor.stages.step9_write import write_rows

    items = [RuleItem("statement", "", "Bridge\n\nThe bridge opened in 1911.", "a.txt", "a.txt#0", "Bridge", "", "")]
    out = OutputSet(tmp_path / "o.jsonl", tmp_path / "o.eval.jsonl")
    write_rows(out, [], [], items, fact_answers=True, seed=0, eval_fraction=0.999999)
    out.close()
    (row,) = [json.loads(x) for x in open(tmp_path / "o.jsonl")]
    assert row == _text("Bridge\n\nThe bridge opened in 1911.") | {"theme": "Bridge"}
    assert (tmp_path / "o.eval.jsonl").read_text() == ""


def test_paraphrases_of_held_out_questions_are_never_trained(tmp_path):
    """A paraphrase of a held-out question (same fact and span) is left out; the other paraphrases are trained,
    and the held-out choice is the one made without paraphrases."""
    from data_processor.stages.step8_rule_rows import RuleItem
    from data_processor.stages.step9_write import write_rows

    fact = "Ada Pellingham built the bridge in 1911."

    def item(kind, q, span):
        return RuleItem(kind, q, fact, "a.txt", "a.txt#0", "Bridge", fact, span)

    wh = [item("wh", "Who built the bridge in 1911?", "Ada Pellingham"),
          item("wh", "In what year did Ada Pellingham build the bridge?", "1911")]
    para = [item("paraphrase", "Who constructed the bridge in 1911?", "Ada Pellingham"),
            item("paraphrase", "In what year did Ada Pellingham construct the bridge?", "1911")]

    def run(name, items, fraction):
        out = OutputSet(tmp_path / f"{name}.jsonl", tmp_path / f"{name}.eval.jsonl")
        write_rows(out, [], [], items, fact_answers=True, seed=0, eval_fraction=fraction)
        out.close()
        return ([json.loads(x) for x in open(tmp_path / f"{name}.jsonl")],
                [json.loads(x) for x in open(tmp_path / f"{name}.eval.jsonl")])

    train, held = run("held", wh + para, 0.999999)
    assert [e["question"] for e in held] == ["Who built the bridge in 1911?"]
    assert [(r["role"], r["conversations"][0]["value"]) for r in train] == [
        ("wh", "In what year did Ada Pellingham build the bridge?"),
        ("paraphrase", "In what year did Ada Pellingham construct the bridge?")]
    assert run("without", wh, 0.999999) == ([r for r in train if r["role"] != "paraphrase"], held)
    train, held = run("none", wh + para, 0.0)
    assert held == [] and [r["role"] for r in train] == ["wh", "wh", "paraphrase", "paraphrase"]


def test_cause_questions_about_a_held_out_span_are_never_trained(tmp_path):
    """A cause item whose clause holds the span a held-out question asks for is left out; the others (of the same
    fact) are trained; the held-out choice is the one made without cause items."""
    from data_processor.stages.step8_rule_rows import RuleItem
    from data_processor.stages.step9_write import write_rows

    fact = "The festival began in 1847 because of the Great Gale of 1846."
    other = "The Ostrel bridge was built in 1911 to carry the tram."

    def item(kind, q, span, f=fact):
        return RuleItem(kind, q, f, "a.txt", "a.txt#0", "Festival", f, span)

    wh = [item("wh", "In what year did the festival begin because of the Great Gale?", "1846"),
          item("wh", "In what year was the Ostrel bridge built?", "1911", other)]
    cause = [item("cause", "Why did the festival begin in 1847?", "because of the Great Gale of 1846"),
             item("cause", "Why was the Ostrel bridge built in 1911?", "to carry the tram", other)]

    def run(name, items):
        out = OutputSet(tmp_path / f"{name}.jsonl", tmp_path / f"{name}.eval.jsonl")
        write_rows(out, [], [], items, fact_answers=True, seed=0, eval_fraction=0.999999)
        out.close()
        return ([json.loads(x) for x in open(tmp_path / f"{name}.jsonl")],
                [json.loads(x) for x in open(tmp_path / f"{name}.eval.jsonl")])

    train, held = run("with", wh + cause)
    assert {e["answers"][0] for e in held} == {"1846", "1911"}
    # the bridge's cause question asks for the purpose, not the held-out year: trained, answered with its fact
    assert [(r["role"], r["conversations"][0]["value"], r["conversations"][1]["value"]) for r in train] == [
        ("cause", "Why was the Ostrel bridge built in 1911?", other)]
    assert run("without", wh) == ([], held)
