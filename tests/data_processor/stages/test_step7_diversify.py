"""Stage 7 (diversify): accepting only real rewrites of the question."""
import pytest

from data_processor.parsing import ParseError
from data_processor.stages.step7_diversify import parse_rewrite


@pytest.mark.parametrize("reply, ok", [
    ("When did they finish the Ostrel bridge?", True),
    ("Rewritten question: When did they open the Ostrel bridge", True),
    ("When was the Ostrel bridge opened?", False),  # a copy
    ("Who won the 1987 football cup?", False),  # lost the meaning
    ("When was the Ostrel bridge opened, in 1850?", False),  # adds a number
    ("The Ostrel bridge: a former NFL quarterback who was killed in a botched game, opened?", False),  # invents
    ("", False),
])
def test_parse_rewrite(reply, ok):
    original = "When was the Ostrel bridge opened?"
    if ok:
        assert parse_rewrite(reply, original, "a tourist").endswith("?")
    else:
        with pytest.raises(ParseError):
            parse_rewrite(reply, original, "a tourist")
