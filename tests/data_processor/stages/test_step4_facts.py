"""Stage 4 (facts): parsing fact lists and adding the sentences the generator skipped."""
import pytest

from data_processor.parsing import ParseError
from data_processor.stages.step4_facts import (
    parse_facts,
    split_facts,
    uncovered_sentences,
)


def test_parse_facts_splits_copied_paragraphs_and_drops_noise():
    reply = ("Here are the facts:\n- Drennick: the hoop-and-stick game\n"
             "- The hoop is made of ash wood. It weighs 600 grams.\n- The hoop is made of ash wood.\n- Too short.\n"
             '["ignored because lines won"')
    assert parse_facts(reply) == ["The hoop is made of ash wood.", "It weighs 600 grams."]
    assert parse_facts('["The IDF was founded in 1958.", "It has 31 member nations."]') == [
        "The IDF was founded in 1958.", "It has 31 member nations."]
    with pytest.raises(ParseError):
        parse_facts("Sure!\n\n")


def test_uncovered_sentences_fill_what_the_generator_skipped():
    chunk = "The IDF was founded in 1958. Its headquarters are in Castelbrook. It has 31 member nations."
    assert uncovered_sentences(chunk, ["The IDF was founded in 1958.", "The IDF has 31 member nations."]) == [
        "Its headquarters are in Castelbrook."]
    assert split_facts(["北京是中华人民共和国的首都。上海是中国最大的城市。"]) == ["北京是中华人民共和国的首都。", "上海是中国最大的城市。"]
