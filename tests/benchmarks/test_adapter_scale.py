"""benchmarks/adapter_scale.py's table: accuracy per question file and the general-text NLL change per scale."""
from benchmarks.adapter_scale import scores_table


def _results(general: dict | None) -> dict:
    sets = {"eval_qa": {"summary": {"base": {"contains": 0.0}, "s0.5": {"contains": 0.25}, "s1": {"contains": 0.5}}},
            "control_qa": {"summary": {"base": {"contains": 0.7}, "s0.5": {"contains": 0.7}, "s1": {"contains": 0.65}}}}
    return {"sets": sets, **({"general_text": general} if general else {})}


def test_table_has_a_row_per_scale_and_the_nll_change_when_measured():
    general = {"nll": {"base": 4.0, "s0.5": 4.4, "s1": 5.6}, "change_pct": {"s0.5": 10.0, "s1": 40.0}}
    table = scores_table(_results(general), ["base", "s0.5", "s1"], ["x/eval_qa.jsonl", "x/control_qa.jsonl"])
    lines = table.splitlines()
    assert "general NLL change" in lines[0]
    row = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert row["s0.5"] == ["0.250", "0.700", "+10.0%"]
    assert row["s1"] == ["0.500", "0.650", "+40.0%"]
    assert row["base"] == ["0.000", "0.700", "-"]  # the base is the reference: no change of its own


def test_table_without_general_text_has_accuracy_columns_only():
    table = scores_table(_results(None), ["base", "s1"], ["x/eval_qa.jsonl", "x/control_qa.jsonl"])
    assert "NLL" not in table
    assert table.splitlines()[2].split() == ["base", "0.000", "0.700"]
