import pytest

from data_processor.parsing import (
    ParseError,
    ask_with_repair,
    clean_line,
    content_words,
    extract_json,
    finish_question,
    normalize,
    parse_lines,
    support,
)


@pytest.mark.parametrize("reply, expected", [
    ('["a", "b"]', ["a", "b"]),
    ('```json\n["a", "b"]\n```', ["a", "b"]),
    ('Sure! Here is the list:\n["a", "b",]\nHope this helps.', ["a", "b"]),  # chatter + trailing comma
    ("['a', 'b']", ["a", "b"]),  # single quotes
    ('“a”, no: [“a”, “b”]', ["a", "b"]),  # curly quotes
    ('["a", "b", "c is cut off mid-', ["a", "b"]),  # truncated by max_new_tokens
    ('```\n["a", "b"]', ["a", "b"]),  # unclosed fence
])
def test_extract_json_list(reply, expected):
    assert extract_json(reply, list) == expected


def test_extract_json_object_and_failure():
    assert extract_json('The answer: {"question": "Q?", "answer": "A.",}', dict) == {"question": "Q?", "answer": "A."}
    assert extract_json('[1, {"k": [2, 3]}]') == [1, {"k": [2, 3]}]
    with pytest.raises(ParseError):
        extract_json("no json here", list)
    with pytest.raises(ParseError):
        extract_json('{"a": 1}', list)


@pytest.mark.parametrize("reply", [
    "- One fact.\n- Two fact.",
    "1. One fact.\n2) Two fact.",
    '["One fact.", "Two fact."]',
    '[{"fact": "One fact."}, {"fact": "Two fact."}]',
    "Fact 1: One fact.\n\nFact 2: Two fact.\n",
    "* One fact.\n• Two fact.",
])
def test_parse_lines_formats(reply):
    assert parse_lines(reply) == ["One fact.", "Two fact."]


def test_clean_line_keeps_numbers_that_are_content():
    assert clean_line("3.5 million people live there.") == "3.5 million people live there."
    assert clean_line("2024. was a year") == "2024. was a year"  # "2024." is not a list marker
    assert clean_line('  - "Quoted fact."  ') == "Quoted fact."


def test_normalize_for_dedup():
    assert normalize("What is  the Capital?") == normalize("what is the capital")
    assert normalize("Ｆｕｌｌ－width") == normalize("full width")


def test_support_grounding_signal():
    chunk = "Port Amsel is the capital of Veloria. It was founded in 1742."
    assert support("The capital of Veloria is Port Amsel.", chunk) == 1.0
    assert support("The capital of Veloria is Nova Terra.", chunk) == 0.5  # capital, veloria of 4 words
    assert support("It was founded in 1801.", chunk) == 0.0  # an invented number fails outright
    assert "的" not in content_words("北京是中国的首都") and "京" in content_words("北京是中国的首都")


class EchoLLM:
    """Replies from a script, per call; records what it was asked."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.asked = []

    def generate(self, label, chats, stage=None):
        self.asked.append((label, chats))
        return [self.replies.pop(0) for _ in chats]


def _parse_int(reply, _i):
    try:
        return int(reply)
    except ValueError:
        raise ParseError("not a number") from None


def test_ask_with_repair_retries_only_failures_in_one_batch():
    llm = EchoLLM(["1", "x", "y", "2", "3"])
    chats = [[{"role": "user", "content": f"n{i}"}] for i in range(3)]
    results, failures = ask_with_repair(llm, "num", chats, _parse_int, lambda e: f"fix: {e}", max_repairs=1)
    assert results == [1, 2, 3] and failures == 0
    label, repair_chats = llm.asked[1]
    assert label == "num-repair1" and len(repair_chats) == 2
    assert repair_chats[0][-2] == {"role": "assistant", "content": "x"}
    assert repair_chats[0][-1] == {"role": "user", "content": "fix: not a number"}


def test_ask_with_repair_gives_up_after_bounded_rounds():
    llm = EchoLLM(["a", "b", "c"])
    results, failures = ask_with_repair(llm, "num", [[{"role": "user", "content": "n"}]], _parse_int,
                                        lambda e: e, max_repairs=2)
    assert results == [None] and failures == 1 and len(llm.asked) == 3


@pytest.mark.parametrize("question, finished", [
    ("When did the festival start", "When did the festival start?"),
    ("When did the festival start.", "When did the festival start?"),
    ("  Who carved it?  ", "Who carved it?"),
    ("节日是哪一年开始的", "节日是哪一年开始的？"),  # a full-width mark after a Chinese character
    ("", ""),
])
def test_finish_question_ends_with_one_question_mark(question, finished):
    assert finish_question(question) == finished
