import json
from pathlib import Path

import pytest

from utils.data_formats import to_messages
from utils.io_utils import DataFileError, atomic_write_json, iter_jsonl


def test_iter_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\nnot json\n')
    with pytest.raises(DataFileError, match=r"d\.jsonl:4"):
        list(iter_jsonl(p))


def test_iter_jsonl_skip_bad_counts(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"a": 1}\n[1, 2]\n{"a": 3}\n')
    bad: list = []
    rows = list(iter_jsonl(p, skip_bad=True, bad_lines=bad))
    assert [n for n, _ in rows] == [1, 3]
    assert [n for n, _ in bad] == [2]


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "x" / "o.json", {"k": "v"})
    assert json.loads((tmp_path / "x" / "o.json").read_text()) == {"k": "v"}
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["o.json"]


@pytest.mark.parametrize(
    "row",
    [
        {"conversations": [{"from": "user", "value": "Q?"}, {"from": "assistant", "value": "A."}]},
        {"conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]},
        {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]},
        {"instruction": "Q?", "input": "", "output": "A."},
    ],
)
def test_to_messages_formats(row):
    assert to_messages(row) == [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]


def test_alpaca_input_is_appended():
    msgs = to_messages({"instruction": "Translate", "input": "hola", "output": "hello"})
    assert msgs[0]["content"] == "Translate\n\nhola"


@pytest.mark.parametrize(
    "row, match",
    [
        ({"text": "x"}, "none of"),
        ({"conversations": [{"from": "user", "value": "Q?"}]}, "no assistant"),
        ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": " "}]}, "empty"),
        ({"conversations": [{"from": "alien", "value": "Q"}]}, "unknown role"),
    ],
)
def test_to_messages_rejects(row, match):
    with pytest.raises(ValueError, match=match):
        to_messages(row)


def test_atomic_write_uses_normal_file_permissions(tmp_path):
    import os
    import stat

    atomic_write_json(tmp_path / "o.json", {})
    plain = tmp_path / "plain"
    plain.write_text("")
    assert stat.S_IMODE(os.stat(tmp_path / "o.json").st_mode) == stat.S_IMODE(os.stat(plain).st_mode)


def test_optional_file_is_none_for_none_a_path_for_a_file_and_names_the_flag_otherwise(tmp_path):
    from utils.recipe import REPO_ROOT, optional_file

    assert optional_file("none", "--x") is None and optional_file(" None ", "--x") is None
    assert optional_file("", "--x") is None
    present = tmp_path / "p.txt"
    present.write_text("a\n")
    assert optional_file(str(present), "--x") == present
    # a shipped file resolves against the repository from any folder
    assert optional_file("examples/replay_checks.jsonl", "--x") in (
        REPO_ROOT / "examples/replay_checks.jsonl", Path("examples/replay_checks.jsonl"))
    with pytest.raises(FileNotFoundError, match=r"--replay_checks .*gone\.jsonl: no such file"):
        optional_file(str(tmp_path / "gone.jsonl"), "--replay_checks")
