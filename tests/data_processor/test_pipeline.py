"""The collector end to end with a scripted backend: batching, outputs, resume, eval split, grounding."""
import json
import logging

import pytest

from tests.data_processor.conftest import read_jsonl
from tests.data_processor.scripted import ScriptedBackend, prompt_hash


def _flags(docs_dir, out, *more):
    return ["--data_path", str(docs_dir), "--save_dir", str(out), *more]


def test_end_to_end_rows_batching_and_summary(collect, docs_dir, tmp_path):
    out = tmp_path / "out" / "qa.jsonl"
    rc, backend = collect(*_flags(docs_dir, out))
    assert rc == 0
    rows = read_jsonl(out)
    assert rows and len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) == {"id", "conversations", "fact", "theme", "role", "file_name", "chunk_id"}
        assert [t["from"] for t in r["conversations"]] == ["user", "assistant"]
        question, answer = (t["value"] for t in r["conversations"])
        if r["role"] == "cloze":  # fill-in-the-blank rows: one blank, answered with the whole fact
            assert question.count("____") == 1 and answer == r["fact"]
        else:
            assert question.endswith("?") and answer
        assert r["chunk_id"].startswith(r["file_name"] + "#")
    assert {r["file_name"] for r in rows} == {"veloria.txt", "sub/ostrel.md"}
    assert {r["role"] for r in rows} >= {"", "a person of kind 0", "a person of kind 1", "cloze"}
    # Stage-wise batching: one backend call per stage, holding all of that stage's prompts.
    assert [d for d, _ in backend.batches] == ["theme", "facts", "qa", "roles", "diversify"]
    summary = json.loads((tmp_path / "out" / "qa.summary.json").read_text())["summary"]
    assert summary["status"] == "complete" and summary["qa_written"] == len(rows)
    assert summary["llm_calls"] == len(backend.prompts) and summary["files"] == 2
    assert summary["stages"]["rule_rows"]["cloze"] == sum(r["role"] == "cloze" for r in rows)
    # every stage reports its counters the same way, under its own name
    assert list(summary["stages"]) == ["theme", "facts", "qa", "roles", "diversify", "rule_rows"]
    assert summary["stages"]["facts"]["facts"] > 0 and summary["stages"]["qa"]["pairs"] > 0
    for key in ("chunks", "prompt_tokens", "seconds", "duplicates"):
        assert key in summary


def test_second_identical_run_makes_no_calls_and_no_duplicates(collect, docs_dir, tmp_path, capsys):
    out = tmp_path / "qa.jsonl"
    collect(*_flags(docs_dir, out))
    first = out.read_text()
    rc, backend = collect(*_flags(docs_dir, out))
    assert rc == 0 and backend.prompts == [] and out.read_text() == first
    assert json.loads((tmp_path / "qa.summary.json").read_text())["summary"]["llm_calls"] == 0
    assert "LLM calls         0" in capsys.readouterr().out


def test_garbage_replies_are_repaired_or_counted_never_fatal(collect, docs_dir, tmp_path):
    out = tmp_path / "qa.jsonl"
    rc, backend = collect(*_flags(docs_dir, out, "--max_repairs", "1"), garbage_every=3)
    assert rc == 0
    assert any(d.endswith("-repair1") for d, _ in backend.batches)
    assert read_jsonl(out)
    rc, backend = collect(*_flags(docs_dir, tmp_path / "b.jsonl", "--max_repairs", "0"), garbage_every=2)
    summary = json.loads((tmp_path / "b.summary.json").read_text())["summary"]
    assert rc == 0 and sum(c.get("parse_failures", 0) for c in summary["stages"].values()) > 0


@pytest.mark.parametrize("fail_after", [3, 25, 50])
def test_resume_after_a_crash_redoes_nothing_and_duplicates_nothing(collect, docs_dir, tmp_path, fail_after):
    ref = tmp_path / "ref.jsonl"
    _, ref_backend = collect(*_flags(docs_dir, ref, "--chunks_per_wave", "1"))
    out = tmp_path / "qa.jsonl"
    rc, crashed = collect(*_flags(docs_dir, out, "--chunks_per_wave", "1"), fail_after=fail_after)
    assert rc == 1
    rc, resumed = collect(*_flags(docs_dir, out, "--chunks_per_wave", "1"))
    assert rc == 0
    # No prompt answered twice, none missing, and the same file as an uninterrupted run.
    done = [prompt_hash(c) for c in crashed.prompts + resumed.prompts]
    assert len(done) == len(set(done)) == len(ref_backend.prompts)
    assert out.read_text() == ref.read_text()


def test_ctrl_c_stops_cleanly_with_a_resume_hint(collect, docs_dir, tmp_path, caplog):
    out = tmp_path / "qa.jsonl"
    with caplog.at_level(logging.WARNING):
        rc, _ = collect(*_flags(docs_dir, out, "--chunks_per_wave", "1"), raise_interrupt_after=30)
    assert rc == 130
    assert "run the same command again to resume" in caplog.text
    summary = json.loads((tmp_path / "qa.summary.json").read_text())["summary"]
    assert summary["status"] == "interrupted"
    assert collect(*_flags(docs_dir, out, "--chunks_per_wave", "1"))[0] == 0


def test_eval_fraction_holds_out_rewritten_questions(collect, docs_dir, tmp_path):
    out = tmp_path / "qa.jsonl"
    rc, _ = collect(*_flags(docs_dir, out, "--eval_fraction", "0.5", "--role_amount_per_fact", "3"))
    assert rc == 0
    train, ev = read_jsonl(out), read_jsonl(tmp_path / "qa.eval.jsonl")
    assert ev
    train_questions = {r["conversations"][0]["value"] for r in train}
    train_facts = {r["fact"] for r in train}
    for e in ev:
        assert set(e) >= {"question", "answers", "fact", "file_name", "chunk_id", "role"}
        assert e["question"] not in train_questions  # never trained on
        assert e["fact"] in train_facts  # ... while other phrasings of the same fact are
        assert e["train_question"] in train_questions
    # Seeded: the same run picks the same facts; another seed picks others.
    rc, _ = collect(*_flags(docs_dir, tmp_path / "again.jsonl", "--eval_fraction", "0.5", "--role_amount_per_fact", "3"))
    assert [e["question"] for e in read_jsonl(tmp_path / "again.eval.jsonl")] == [e["question"] for e in ev]


def test_grounding_filter_drops_or_replaces_invented_answers(collect, docs_dir, tmp_path):
    def summary(name):
        return json.loads((tmp_path / f"{name}.summary.json").read_text())["summary"]["stages"]["qa"]

    def invented(name):
        return any("Zyxxon" in json.dumps(r) for r in read_jsonl(tmp_path / f"{name}.jsonl"))

    # Default: the unsupported answer is replaced by the (grounded) fact sentence.
    assert collect(*_flags(docs_dir, tmp_path / "d.jsonl"), invent_answers=True)[0] == 0
    assert not invented("d") and summary("d")["answers_from_fact"] > 0 and summary("d").get("grounding_dropped", 0) == 0
    # Without the replacement the pair is dropped.
    assert collect(*_flags(docs_dir, tmp_path / "x.jsonl", "--answer_with_fact", "false"), invent_answers=True)[0] == 0
    assert not invented("x") and summary("x")["grounding_dropped"] == summary("d")["answers_from_fact"]
    # Threshold 0 disables the filter (and the generator's answers train only without --fact_answers).
    assert collect(*_flags(docs_dir, tmp_path / "n.jsonl", "--grounding_threshold", "0", "--fact_answers", "false"),
                   invent_answers=True)[0] == 0
    assert invented("n")


def test_bad_inputs_are_reported_by_name_and_the_rest_goes_on(collect, tmp_path, caplog):
    from tests.data_processor.stages.test_step1_read import make_docx

    d = tmp_path / "mixed"
    d.mkdir()
    (d / "good.txt").write_text("The Ostrel bridge was opened in 1911. It is 340 metres long.")
    (d / "empty.txt").write_text("")
    (d / "blank.txt").write_text(" \n\n\t")
    (d / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (d / "latin1.txt").write_bytes("Le café de Genève a été fondé en 1820 par Amélie Roux.".encode("latin-1"))
    (d / "utf16.txt").write_text("The Lune river is 212 kilometres long.", encoding="utf-16")
    good = make_docx(d / "tables.docx", with_paragraphs=False).read_bytes()
    (d / "corrupt.docx").write_bytes(good[:300])
    (d / "huge.txt").write_text(("The quick river carries boats past the mill " * 3000).strip() + ".")
    (d / "loop").symlink_to(d, target_is_directory=True)
    with caplog.at_level(logging.WARNING):
        rc, _ = collect("--data_path", str(d), "--save_dir", str(tmp_path / "o.jsonl"))
    assert rc == 0
    summary = json.loads((tmp_path / "o.summary.json").read_text())["summary"]
    skipped = " ".join(summary["files_skipped"])
    for name in ("empty.txt", "blank.txt", "binary.txt", "corrupt.docx", "loop"):
        assert name in skipped and name in caplog.text
    assert summary["files"] == 5  # good, latin1, utf16, tables.docx, huge
    assert {r["file_name"] for r in read_jsonl(tmp_path / "o.jsonl")} >= {"good.txt", "latin1.txt", "utf16.txt"}


def test_no_documents_is_a_clean_error(collect, tmp_path, caplog):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.pdf").write_bytes(b"%PDF")
    with caplog.at_level(logging.ERROR):
        rc, backend = collect("--data_path", str(tmp_path / "d"), "--save_dir", str(tmp_path / "o.jsonl"))
    assert rc == 2 and "no readable documents" in caplog.text and backend.prompts == []
    rc, _ = collect("--data_path", str(tmp_path / "missing"), "--save_dir", str(tmp_path / "o.jsonl"))
    assert rc == 2


def test_bad_flags_are_a_clean_error(collect, capsys):
    rc, _ = collect("--model_type", "nope")
    assert rc == 2 and "--model_type must be one of" in capsys.readouterr().err


def test_shards_split_files_and_outputs(collect, docs_dir, tmp_path):
    out = tmp_path / "qa.jsonl"
    for k in range(2):
        assert collect(*_flags(docs_dir, out, "--num_shards", "2", "--shard_index", str(k)))[0] == 0
    a, b = read_jsonl(tmp_path / "qa.shard0of2.jsonl"), read_jsonl(tmp_path / "qa.shard1of2.jsonl")
    assert {r["file_name"] for r in a} == {"sub/ostrel.md"} and {r["file_name"] for r in b} == {"veloria.txt"}


def test_overwrite_starts_the_file_afresh_but_keeps_the_cache(collect, docs_dir, tmp_path):
    out = tmp_path / "qa.jsonl"
    collect(*_flags(docs_dir, out))
    out.write_text('{"id": "stale"}\n')
    rc, backend = collect(*_flags(docs_dir, out, "--overwrite"))
    assert rc == 0 and backend.prompts == [] and "stale" not in out.read_text() and read_jsonl(out)


def test_rows_appear_wave_by_wave(collect, docs_dir, tmp_path):
    out = tmp_path / "qa.jsonl"
    backend = ScriptedBackend()
    seen = []
    orig = backend.generate

    def spy(chats, sampling, **kw):
        seen.append((kw["desc"], len(read_jsonl(out)) if out.exists() else 0))
        return orig(chats, sampling, **kw)

    backend.generate = spy
    assert collect(*_flags(docs_dir, out, "--chunks_per_wave", "1"), backend=backend)[0] == 0
    written_before_theme = [n for d, n in seen if d == "theme"]
    assert written_before_theme[0] == 0 and written_before_theme[-1] > 0


def test_unwritable_output_is_a_clean_error(collect, docs_dir, tmp_path, caplog):
    (tmp_path / "a_file").write_text("x")
    with caplog.at_level(logging.ERROR):
        rc, _ = collect(*_flags(docs_dir, tmp_path / "a_file" / "qa.jsonl"))
    assert rc == 2 and "cannot write" in caplog.text


def test_rule_rows_alone_and_their_held_out_questions(collect, docs_dir, tmp_path):
    """No generator-written QA: the rule-made rows train, and a sampled fact's questions about one span
    go to the eval file with that span as the answer, never to training."""
    rc, backend = collect("--data_path", str(docs_dir), "--save_path", str(tmp_path / "r.jsonl"),
                          "--qa_amount_per_fact", "0", "--personas_per_document", "0", "--wh_spans_per_fact", "3",
                          "--resolve_pronouns", "true", "--eval_fraction", "0.5")
    assert rc == 0
    assert {desc for desc, _ in backend.batches} <= {"theme", "facts", "theme-repair1", "facts-repair1"}
    rows, held = read_jsonl(tmp_path / "r.jsonl"), read_jsonl(tmp_path / "r.eval.jsonl")
    assert {r["role"] for r in rows} == {"cloze", "wh"} and held
    train_questions = {r["conversations"][0]["value"] for r in rows}
    for e in held:
        assert e["question"] not in train_questions and e["role"] == "wh"
        assert len(e["answers"]) == 1 and e["answers"][0] in e["fact"] and e["answers"][0] not in e["question"]
        assert any(r["fact"] == e["fact"] for r in rows)  # the fact itself is still taught


def test_fact_answers_make_every_training_answer_its_fact(collect, docs_dir, tmp_path):
    """--fact_answers: a generated answer that passes the grounding check (here: no check) is replaced by
    its fact too; the questions and the held-out file stay the same."""
    common = ("--wh_spans_per_fact", "2", "--grounding_threshold", "0", "--eval_fraction", "0.5")
    assert collect(*_flags(docs_dir, tmp_path / "plain.jsonl", *common, "--fact_answers", "false"),
                   invent_answers=True)[0] == 0
    assert collect(*_flags(docs_dir, tmp_path / "fact.jsonl", *common, "--fact_answers"), invent_answers=True)[0] == 0
    plain, fact = read_jsonl(tmp_path / "plain.jsonl"), read_jsonl(tmp_path / "fact.jsonl")
    assert any("Zyxxon" in r["conversations"][1]["value"] for r in plain)  # the generator's own answers
    assert fact and all(r["conversations"][1]["value"] == r["fact"] for r in fact)
    assert {r["conversations"][0]["value"] for r in fact} == {r["conversations"][0]["value"] for r in plain}
    assert read_jsonl(tmp_path / "plain.eval.jsonl") == read_jsonl(tmp_path / "fact.eval.jsonl")


def test_projection_line():
    from data_processor.pipeline import projection_line

    assert projection_line(60, 16, 48) == ("projected time: about 3 min more for the other 48 chunks "
                                           "(the first wave, 16 chunks, took 60 s)")
    assert "about 3.3 h more" in projection_line(600, 10, 200) and "about 40 s more" in projection_line(10, 5, 20)


def test_a_run_of_several_waves_projects_its_time_from_a_small_first_wave(collect, tmp_path, caplog):
    from data_processor.pipeline import FIRST_WAVE_CHUNKS

    d = tmp_path / "long"
    d.mkdir()
    (d / "stations.txt").write_text("\n\n".join(
        f"Station {i} stands on the slope of Mount Teral at {100 + i} metres. It was built in {1800 + i} by Ada Pell."
        for i in range(30)))
    flags = _flags(d, tmp_path / "o.jsonl", "--chunks_per_wave", "20")
    with caplog.at_level(logging.INFO, logger="data_processor.pipeline"):
        assert collect(*flags)[0] == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "data_processor.pipeline"]
    waves = [m for m in lines if m.startswith("wave ")]
    assert waves[0] == f"wave 1: chunks stations.txt#0 .. stations.txt#{FIRST_WAVE_CHUNKS - 1}"
    assert waves[1].startswith(f"wave 2: chunks stations.txt#{FIRST_WAVE_CHUNKS} ..")
    projected = [i for i, m in enumerate(lines) if m.startswith("projected time: about ")]
    assert len(projected) == 1 and lines.index(waves[0]) < projected[0] < lines.index(waves[1])
    total = json.loads((tmp_path / "o.summary.json").read_text())["summary"]["chunks"]
    expected = f"more for the other {total - FIRST_WAVE_CHUNKS} chunks (the first wave, {FIRST_WAVE_CHUNKS} chunks"
    assert expected in lines[projected[0]]
    # Run again: every reply comes from the cache, so no wave sets a pace and nothing is projected.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="data_processor.pipeline"):
        assert collect(*flags)[0] == 0
    assert "projected time" not in caplog.text


def test_statement_rows_are_plain_text_rows_that_resume_without_duplicates(collect, docs_dir, tmp_path):
    """--statement_rows 2: per chunk, its facts as text in document order and one seeded shuffle, which the
    fine-tuning loader reads as plain text; a crashed run resumes to the same file; 0 adds nothing."""
    from finetuning.data import load_rows
    from utils.data_formats import is_plain_text

    common = ("--chunks_per_wave", "1", "--resolve_pronouns", "true")
    plain, ref = tmp_path / "plain.jsonl", tmp_path / "ref.jsonl"
    assert collect(*_flags(docs_dir, plain, *common))[0] == 0
    assert collect(*_flags(docs_dir, tmp_path / "zero.jsonl", *common, "--statement_rows", "0"))[0] == 0
    assert (tmp_path / "zero.jsonl").read_bytes() == plain.read_bytes()
    assert collect(*_flags(docs_dir, ref, *common, "--statement_rows", "2"))[0] == 0
    rows = read_jsonl(ref)
    texts = [r for r in rows if r["role"] == "statement"]
    assert [r for r in rows if r["role"] != "statement"] == read_jsonl(plain)  # the other rows are unchanged
    summary = json.loads((tmp_path / "ref.summary.json").read_text())["summary"]
    assert texts and summary["stages"]["rule_rows"]["statement"] >= len(texts)
    for r in texts:
        assert set(r) == {"id", "text", "fact", "theme", "role", "file_name", "chunk_id"} and r["fact"] == ""
        title, blank, body = r["text"].split("\n", 2)
        assert title and blank == "" and body
        facts = {x["fact"] for x in rows if x["chunk_id"] == r["chunk_id"] and x["fact"]}
        assert all(f in body for f in facts)
    assert len({r["text"] for r in texts}) == len(texts)
    assert {r["chunk_id"] for r in texts} == {r["chunk_id"] for r in rows}
    loaded = load_rows(ref)
    assert sum(is_plain_text(x.messages) for x in loaded) == len(texts)
    assert [x.messages[0]["content"] for x in loaded if is_plain_text(x.messages)] == [r["text"] for r in texts]

    out = tmp_path / "qa.jsonl"
    assert collect(*_flags(docs_dir, out, *common, "--statement_rows", "2"), fail_after=30)[0] == 1
    partial = read_jsonl(out)
    assert len(partial) < len(rows) and any(r["role"] == "statement" for r in partial)
    assert collect(*_flags(docs_dir, out, *common, "--statement_rows", "2"))[0] == 0
    assert out.read_text() == ref.read_text()
    assert collect(*_flags(docs_dir, out, *common, "--statement_rows", "2"))[0] == 0  # nothing new the third time
    assert out.read_text() == ref.read_text()


def test_statement_rows_are_set_by_a_recipe_and_checked(tmp_path):
    from data_processor.config import parse_args

    recipe = tmp_path / "r.yaml"
    recipe.write_text("collect:\n  statement_rows: 2\n")
    assert parse_args(["--recipe", str(recipe)]).statement_rows == 2
    assert parse_args(["--recipe", str(recipe), "--statement_rows", "0"]).statement_rows == 0
    assert parse_args([]).statement_rows == 0  # off in the default recipe
    with pytest.raises(ValueError, match="--statement_rows must be >= 0"):
        parse_args(["--statement_rows", "-1"])


def _collect_off_zero_two(collect, docs_dir, tmp_path, flag: str) -> None:
    """Collect without ``flag``, with it at 0 and at 2 (plain/zero/two.jsonl under ``tmp_path``; rule rows only,
    half the facts held out): 0 must write what no flag writes, and 2 must hold out the same questions."""
    common = ("--qa_amount_per_fact", "0", "--personas_per_document", "0", "--cloze_per_fact", "1",
              "--wh_spans_per_fact", "3", "--resolve_pronouns", "true", "--eval_fraction", "0.5")
    runs = {}
    for name, more in (("plain", ()), ("zero", (flag, "0")), ("two", (flag, "2"))):
        out = tmp_path / f"{name}.jsonl"
        assert collect(*_flags(docs_dir, out, *common, *more))[0] == 0
        runs[name] = (out.read_bytes(), out.with_name(f"{name}.eval.jsonl").read_bytes())
    assert runs["zero"] == runs["plain"]
    assert runs["two"][1] == runs["plain"][1]  # the same held-out questions


def test_relation_paraphrases_add_reworded_rule_questions_and_leave_the_held_out_ones_unseen(collect, docs_dir, tmp_path):
    """--relation_paraphrases 2: rule-made questions asked again with another verb of the lexicon ('founded' ->
    'established'), answered with their fact; every other row and the held-out file are as without it, and no
    wording of a held-out question is trained. 0 writes what a run without the flag writes."""
    from data_processor.relations import paraphrases

    _collect_off_zero_two(collect, docs_dir, tmp_path, "--relation_paraphrases")

    rows = read_jsonl(tmp_path / "two.jsonl")
    reworded = [r for r in rows if r["role"] == "paraphrase"]
    assert [r for r in rows if r["role"] != "paraphrase"] == read_jsonl(tmp_path / "plain.jsonl")
    assert reworded and all(r["conversations"][1]["value"] == r["fact"] for r in reworded)
    questions = {r["conversations"][0]["value"] for r in reworded}
    assert any("established" in q or "constructed" in q for q in questions)
    summary = json.loads((tmp_path / "two.summary.json").read_text())["summary"]
    assert summary["stages"]["rule_rows"]["paraphrase"] >= len(reworded)
    held = read_jsonl(tmp_path / "two.eval.jsonl")
    assert held
    trained = {r["conversations"][0]["value"] for r in rows}
    for e in held:
        assert not set(paraphrases(e["question"], 100)) & trained, e["question"]


def test_cause_questions_add_why_rows_and_leave_the_held_out_ones_unseen(collect, docs_dir, tmp_path):
    """--cause_questions 2: why-questions about a fact's cause or purpose clause, answered with their fact; every
    other row and the held-out file are as without it, and no trained one asks for a held-out span. 0 writes what
    a run without the flag writes."""
    from data_processor.causes import cause_questions

    (docs_dir / "lake.txt").write_text(
        "Lake Orrin\n\nLake Orrin will silt up because of the continuous input of sediment from the river. The "
        "Orrin dam was built in 1931 to protect the valley from floods. In 2019 the villagers set a record by "
        "floating 3,016 lanterns on the lake.", encoding="utf-8")
    _collect_off_zero_two(collect, docs_dir, tmp_path, "--cause_questions")

    rows = read_jsonl(tmp_path / "two.jsonl")
    why = [r for r in rows if r["role"] == "cause"]
    assert [r for r in rows if r["role"] != "cause"] == read_jsonl(tmp_path / "plain.jsonl")
    assert why and all(r["conversations"][1]["value"] == r["fact"] for r in why)
    questions = {r["conversations"][0]["value"] for r in why}
    assert questions & {"Why will Lake Orrin silt up?", "Why was the Orrin dam built in 1931?",
                        "How did the villagers set a record in 2019?"}
    summary = json.loads((tmp_path / "two.summary.json").read_text())["summary"]
    assert summary["stages"]["rule_rows"]["cause"] >= len(why)
    held = read_jsonl(tmp_path / "two.eval.jsonl")
    assert held
    for r in why:  # the clause a trained why-question asks about never holds a held-out answer of its fact
        clauses = [c for q, c in cause_questions(r["fact"], 2) if q == r["conversations"][0]["value"]]
        assert clauses and not any(e["fact"] == r["fact"] and e["answers"][0] in clauses[0] for e in held)


@pytest.mark.parametrize("setting", ["relation_paraphrases", "cause_questions"])
def test_english_only_levers_are_set_by_a_recipe_checked_and_off_by_default(tmp_path, setting):
    from data_processor.config import parse_args

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"collect:\n  {setting}: 2\n")
    assert getattr(parse_args(["--recipe", str(recipe)]), setting) == 2
    assert getattr(parse_args(["--recipe", str(recipe), f"--{setting}", "0"]), setting) == 0
    assert getattr(parse_args([]), setting) == 0  # off in the default recipe
    assert getattr(parse_args(["--recipe", str(recipe), "--language", "zh"]), setting) == 0
    with pytest.raises(ValueError, match=f"--{setting} must be >= 0"):
        parse_args([f"--{setting}", "-1"])
