"""Stage 3 (theme): parsing the model's title, and the file-name fallback."""
import pytest

from data_processor.parsing import ParseError
from data_processor.stages.step3_theme import fallback_theme, parse_theme


@pytest.mark.parametrize("reply, expected", [
    ("Drennick: The Hoop-and-Stick Game", "Drennick: The Hoop-and-Stick Game"),
    ("Topic: The Saltlight Festival.", "The Saltlight Festival"),
    ("The topic of this text is glaciers", "glaciers"),
    ('"Quillmere"\nmore text', "Quillmere"),
    ("one two three four five six seven eight nine ten eleven twelve thirteen", "one two three four five six seven eight nine ten eleven twelve"),
])
def test_parse_theme(reply, expected):
    assert parse_theme(reply) == expected


@pytest.mark.parametrize("reply", ["", "  \n", "{{{ ]]", "I'm sorry, I cannot help with that."])
def test_parse_theme_rejects(reply):
    with pytest.raises(ParseError):
        parse_theme(reply)


def test_fallback_theme():
    assert fallback_theme("dir/saltlight_festival-2023.txt") == "saltlight festival 2023"
