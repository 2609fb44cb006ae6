import json

from data_processor.backends.base import LLMBackend
from replay.build import build_replay, read_prompts, replay_rows, trim_to_sentence


class EchoBackend(LLMBackend):
    model_id = "echo"

    def __init__(self):
        super().__init__()
        self.seen = []

    def generate(self, chats, sampling):
        self.seen.append(sampling)
        return ["" if "skip" in c[-1]["content"] else "ans:" + c[-1]["content"] + "." for c in chats]


def test_read_prompts_skips_comments_blanks_and_duplicates(tmp_path):
    p = tmp_path / "p.txt"
    p.write_text("# comment\nA?\n\nB?\nA?\n")
    assert read_prompts(p) == ["A?", "B?"]


def test_replay_rows_drop_empty_answers_and_have_stable_ids():
    rows = replay_rows(["A?", "B?"], ["yes.", "  "])
    assert len(rows) == 1 and rows[0]["conversations"][1]["value"] == "yes."
    assert rows[0]["id"] == replay_rows(["A?"], ["yes."])[0]["id"]


def test_build_replay_is_greedy_and_skips_when_up_to_date(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("A?\nskip me\nB?\n")
    out = tmp_path / "r.jsonl"
    backend = EchoBackend()
    build_replay("m", prompts, out, backend=backend)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["conversations"][1]["value"] for r in rows] == ["ans:A?.", "ans:B?."]
    assert backend.seen[0].temperature == 0.0
    build_replay("m", prompts, out, backend=backend)  # same inputs: no new generation
    assert len(backend.seen) == 1
    prompts.write_text("C?\n")
    build_replay("m", prompts, out, backend=backend)  # prompts changed: regenerated
    assert len(backend.seen) == 2


def test_trim_to_sentence():
    assert trim_to_sentence("One. Two is cut") == "One."
    assert trim_to_sentence("Complete answer.") == "Complete answer."
    assert trim_to_sentence("Is it? Yes! And then") == "Is it? Yes!"
    assert trim_to_sentence("no sentence end at all") == ""


def test_shipped_replay_prompts_stay_disjoint_from_the_control_set():
    """Replay trains on the base model's answers; a control question (or a near copy) among the prompts
    would make the forgetting measurement meaningless."""
    import json
    from pathlib import Path

    from replay.build import read_prompts

    root = Path(__file__).resolve().parents[2]
    prompts = read_prompts(root / "examples" / "replay_prompts.txt")
    control = [json.loads(line)["question"] for line in (root / "examples" / "control_qa.jsonl").read_text().splitlines()]
    _assert_far_apart(control, prompts)


def _assert_far_apart(control: list[str], prompts: list[str]) -> None:
    """No prompt shares half its content words with a control question or starts with its first 5 words."""
    from data_processor.parsing import content_words

    for q in control:
        cq = content_words(q)
        head = " ".join(q.lower().split()[:5])
        for p in prompts:
            cp = content_words(p)
            assert len(cq & cp) / len(cq | cp) < 0.5, (q, p)
            assert not p.lower().startswith(head), (q, p)


def test_replay_prompts_never_ask_a_test_corpus_control_question():
    """The frozen test corpus has its own control set: no prompt is one of its questions, and the block of
    short factual prompts (the last one in the file) keeps the same distance rule as above from it."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    lines = (root / "examples" / "replay_prompts.txt").read_text().splitlines()
    prompts = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    start = max(i for i, line in enumerate(lines) if line.startswith("# Short factual questions with a number"))
    block = [line.strip() for line in lines[start:] if line.strip() and not line.startswith("#")]
    assert len(block) > 150
    control = [json.loads(line)["question"]
               for line in (root / "examples" / "test_corpus" / "control_qa.jsonl").read_text().splitlines()]
    lowered = {p.lower() for p in prompts}
    assert not [q for q in control if q.lower() in lowered]
    _assert_far_apart(control, block)
