"""Stage 6 (roles): parsing personas and filling up with stock ones."""
import pytest

from data_processor.parsing import ParseError
from data_processor.stages.step6_roles import fill_roles, parse_roles


def test_parse_roles_and_fill():
    assert parse_roles("1. a tourist\n2. A historian.\n- a tourist\nRole: a student") == ["a tourist", "A historian", "a student"]
    with pytest.raises(ParseError):
        parse_roles("I'm sorry, I can't.")
    roles, used = fill_roles(["a tourist"], 3, ["a tourist", "a teacher", "a pilot"], "doc.txt")
    assert len(roles) == 3 and roles[0] == "a tourist" and len(set(roles)) == 3 and used == 2
    assert fill_roles([], 2, ["x", "y", "z"], "doc.txt") == fill_roles([], 2, ["x", "y", "z"], "doc.txt")
