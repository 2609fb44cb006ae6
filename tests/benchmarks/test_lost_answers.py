import json

from benchmarks.lost_answers import control_answers, main, ngrams


def _run_dir(tmp_path, answers):
    """A run folder whose eval/results.json has one control question per ``(question, base, updated)``,
    scored the way evaluate.py scores them."""
    from evaluation.scoring import contains_match

    questions = [{"question": q, "answers": [gold], "predictions": {
        label: {"text": text, "contains": contains_match(text, [gold])} for label, text in (("base", b), ("updated", u))}}
        for q, gold, b, u in answers]
    run = tmp_path / "e0" / "test-s42"
    (run / "eval").mkdir(parents=True)
    (run / "eval" / "results.json").write_text(json.dumps({"sets": {"control": {"questions": questions}}}))
    return run


def test_ngrams_are_runs_of_normalised_words():
    assert ngrams("The answer is 8. A dog has 8 legs!", 5) == {
        ("answer", "is", "8", "dog", "has"), ("is", "8", "dog", "has", "8"), ("8", "dog", "has", "8", "legs")}
    assert ngrams("too short", 5) == set()


def test_lost_answers_are_right_at_base_and_wrong_after(tmp_path, capsys):
    run = _run_dir(tmp_path, [("Capital of Japan?", "Tokyo", "Tokyo.", "Kyoto, they say."),
                              ("Capital of Egypt?", "Cairo", "Cairo.", "Cairo."),
                              ("Capital of Greece?", "Athens", "I do not know.", "Athens.")])
    assert [q for q, _, lost in control_answers(run) if lost] == ["Capital of Japan?"]
    replay = tmp_path / "replay.jsonl"
    replay.write_text(json.dumps({"id": "r1", "conversations": [
        {"from": "user", "value": "Q?"}, {"from": "assistant", "value": "The capital is Kyoto, they say."}]}) + "\n")
    checks = tmp_path / "checks.jsonl"
    checks.write_text('{"question": "Q?", "answers": ["right"]}\n')
    assert main([str(run), "--replay", str(replay), "--checks", str(checks), "--ngram", "2"]) == 0
    out = capsys.readouterr().out
    assert "lost 1; sharing a 2-word run with a replay answer 1; with a replay answer the checks drop 1" in out
    assert "the other control answers: 0 of 2" in out
