"""benchmarks/forgetting_split.py: the general-text rows split by kind, and the table of NLL changes."""
from benchmarks.forgetting_split import split_rows, split_table
from evaluation.general_text import load_general_text
from utils.recipe import REPO_ROOT


def test_the_shipped_general_text_splits_into_both_kinds_and_loses_no_row():
    rows = load_general_text(REPO_ROOT / "examples" / "general_text.jsonl")
    kinds = split_rows(rows)
    assert kinds["text"] and kinds["chat"]
    assert len(kinds["text"]) + len(kinds["chat"]) == len(rows)
    assert all("prompt" in r and "reply" in r for r in kinds["chat"])


def test_table_gives_each_scales_change_per_kind_against_the_base():
    table = split_table({"text": 4.0, "chat": 3.0}, {"s1": {"text": 5.0, "chat": 3.3}, "s0.5": {"text": 4.2, "chat": 3.0}})
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:]}
    assert rows["base"] == ["4.0000", "3.0000", "-", "-"]
    assert rows["s1"] == ["5.0000", "3.3000", "+25.0%", "+10.0%"]
    assert rows["s0.5"][2:] == ["+5.0%", "+0.0%"]
