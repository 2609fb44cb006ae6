"""benchmarks/compare_runs.py: questions gained and lost between two runs, and the sign test."""
import json
from math import comb

import pytest

from benchmarks.compare_runs import compare, main, sign_test


def test_sign_test():
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == 1.0
    assert sign_test(6, 0) == pytest.approx(2 / 64)
    assert sign_test(0, 6) == sign_test(6, 0)
    assert sign_test(7, 5) == pytest.approx(2 * sum(comb(12, k) for k in range(6)) / 4096)


def test_compare_lists_gained_and_lost_and_refuses_different_questions():
    a = {"q1": True, "q2": False, "q3": False, "q4": True}
    b = {"q1": True, "q2": True, "q3": False, "q4": False}
    assert compare(a, b) == (["q2"], ["q4"])
    with pytest.raises(ValueError, match="different questions"):
        compare(a, {"q1": True})


def _run(tmp_path, name, right):
    def questions(flags):
        return [{"question": f"q{i}", "predictions": {"updated": {"contains": c}}} for i, c in enumerate(flags)]

    (tmp_path / name / "eval").mkdir(parents=True)
    (tmp_path / name / "eval" / "results.json").write_text(json.dumps(
        {"sets": {"eval_qa": {"questions": questions(right)}, "control": {"questions": questions([True, True])}}}))
    return str(tmp_path / name)


def test_main_prints_the_table(tmp_path, capsys):
    a, b = _run(tmp_path, "a", [False, False, True]), _run(tmp_path, "b", [True, True, True])
    assert main([a, b]) == 0
    out = capsys.readouterr().out
    assert "eval_qa gained: q0" in out and "eval_qa gained: q1" in out and "lost" not in out.split("A = ")[0]
    assert "eval_qa  3        1        3         2       0         0.50" in out
    assert main([a, str(tmp_path / "missing")]) == 2
