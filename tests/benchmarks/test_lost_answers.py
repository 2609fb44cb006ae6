import json

from benchmarks.lost_answers import control_answers, main, ngrams


def _run_dir(tmp_path, base, updated):
    """A test-corpus run folder whose base and updated control answers are the given lists (padded with '')."""
    from benchmarks.knowledge import CORPORA
    from utils.recipe import REPO_ROOT

    n = len((REPO_ROOT / CORPORA["test"][2]).read_text().splitlines())
    run = tmp_path / "e0" / "test-s42"
    (run / "eval" / "predictions").mkdir(parents=True)
    for label, preds in (("base", base), ("updated", updated)):
        (run / "eval" / "predictions" / f"{label}__control.json").write_text(
            json.dumps({"predictions": preds + [""] * (n - len(preds))}))
    return run


def test_ngrams_are_runs_of_normalised_words():
    assert ngrams("The answer is 8. A dog has 8 legs!", 5) == {
        ("answer", "is", "8", "dog", "has"), ("is", "8", "dog", "has", "8"), ("8", "dog", "has", "8", "legs")}
    assert ngrams("too short", 5) == set()


def test_lost_answers_are_right_at_base_and_wrong_after(tmp_path, capsys):
    # The test corpus's control set opens with capitals: Tokyo, Cairo, Athens.
    run = _run_dir(tmp_path, ["Tokyo.", "Cairo.", "I do not know."], ["Kyoto, they say.", "Cairo.", "Athens."])
    lost = [q for q, _, was_lost in control_answers(run) if was_lost]
    assert lost == ["What is the capital of Japan?"]
    replay = tmp_path / "replay.jsonl"
    replay.write_text(json.dumps({"id": "r1", "conversations": [
        {"from": "user", "value": "Q?"}, {"from": "assistant", "value": "The capital is Kyoto, they say."}]}) + "\n")
    checks = tmp_path / "checks.jsonl"
    checks.write_text('{"question": "Q?", "answers": ["right"]}\n')
    assert main([str(run), "--replay", str(replay), "--checks", str(checks), "--ngram", "2"]) == 0
    assert "lost 1; sharing a 2-word run with a replay answer 1; with a replay answer the checks drop 1" in capsys.readouterr().out
