import json

import pytest

from generation.base import LLMBackend
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


def test_shipped_answers_are_current_for_the_default_recipe():
    """The default model's answers in examples/replay_answers.jsonl must match the recipe's prompts file
    and length cap, or every fresh machine generates them again (minutes of CPU)."""
    from replay.build import BUNDLED, bundled_key
    from utils.recipe import DEFAULT_RECIPE, recipe_section, repo_path
    from utils.io_utils import is_current

    section = recipe_section(DEFAULT_RECIPE, "finetune")
    prompts = read_prompts(repo_path(section["replay_prompts"]))
    key = bundled_key("default", prompts, section["replay_max_new_tokens"])
    assert is_current(BUNDLED, key), "prompts or length cap changed: run python -m replay --bundle True"
    rows = [json.loads(line) for line in BUNDLED.read_text(encoding="utf-8").splitlines()]
    asked = [r["conversations"][0]["value"] for r in rows]
    assert len(asked) >= 0.95 * len(prompts) and set(asked) <= set(prompts)
    assert asked == [p for p in prompts if p in set(asked)]  # in the prompts file's order


def _bundle_for(tmp_path, monkeypatch, model_dir):
    """A bundled file for ``model_dir`` posing as the default model, with its stamp."""
    import replay.build as rb
    from utils.io_utils import mark_current

    monkeypatch.setattr(rb, "default_model_dir", lambda: model_dir)
    monkeypatch.setenv("KU_REPLAY_CACHE", str(tmp_path / "cache"))
    prompts = tmp_path / "p.txt"
    prompts.write_text("A?\nB?\n")
    bundled = tmp_path / "bundled.jsonl"
    bundled.write_text("".join(json.dumps(r) + "\n" for r in replay_rows(["A?", "B?"], ["a.", "b."])))
    mark_current(bundled, rb.bundled_key("default", ["A?", "B?"], 64))
    monkeypatch.setattr(rb, "BUNDLED", bundled)
    return prompts, bundled


def test_ensure_replay_uses_the_shipped_answers_of_the_default_model(tmp_path, monkeypatch, tiny_model_dir):
    import replay.build as rb

    prompts, bundled = _bundle_for(tmp_path, monkeypatch, tiny_model_dir)

    def no_generation(*a, **k):
        raise AssertionError("generated although the shipped answers match")

    monkeypatch.setattr(rb, "build_replay", no_generation)
    out = rb.ensure_replay(str(tiny_model_dir), prompts, max_new_tokens=64)
    assert out.parent == tmp_path / "cache" and out.read_text() == bundled.read_text()
    assert rb.ensure_replay(str(tiny_model_dir), prompts, max_new_tokens=64) == out  # now cached
    with pytest.raises(AssertionError, match="generated"):  # another length cap: not the shipped answers
        rb.ensure_replay(str(tiny_model_dir), prompts, max_new_tokens=32)
    prompts.write_text("A?\nC?\n")
    with pytest.raises(AssertionError, match="generated"):  # other prompts: not the shipped answers
        rb.ensure_replay(str(tiny_model_dir), prompts, max_new_tokens=64)


def test_shipped_answers_are_never_used_for_another_model(tmp_path, monkeypatch, tiny_model_dir):
    import replay.build as rb

    _bundle_for(tmp_path, monkeypatch, tmp_path / "elsewhere")
    assert rb.bundled_key(str(tiny_model_dir), ["A?", "B?"], 64) is None
    assert rb.bundled_key("default", ["A?", "B?"], 64) is not None


def test_bundle_replay_stamps_a_machine_independent_key(tmp_path, monkeypatch):
    import replay.build as rb
    from utils.io_utils import is_current

    monkeypatch.setattr(rb, "resolve_model_path", lambda name: str(tmp_path / "model"))
    prompts = tmp_path / "p.txt"
    prompts.write_text("A?\nB?\n")
    out = rb.bundle_replay(prompts, max_new_tokens=64, output=tmp_path / "b.jsonl", backend=EchoBackend())
    stamp = json.loads((tmp_path / "b.jsonl.stamp.json").read_text())
    assert str(tmp_path) not in json.dumps(stamp)  # no local path or mtime in the key
    assert is_current(out, rb.bundled_key("default", ["A?", "B?"], 64))


@pytest.mark.slow
def test_shipped_answers_are_what_the_default_model_says(default_model_dir):
    """Each token of the shipped answers is the real model's greedy choice given the tokens before it.

    Regenerating is no check: in a batch, padding changes float rounding enough to flip near-ties, so
    a rerun may diverge after some token and continue greedily from there (measured: 4 of 8 answers
    differ somewhere). Scored token by token, a greedy answer agrees almost everywhere, whatever
    batch made it; another model's or a sampled answer does not.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from replay.build import BUNDLED

    tok = AutoTokenizer.from_pretrained(default_model_dir)
    model = AutoModelForCausalLM.from_pretrained(default_model_dir, torch_dtype=torch.float32).eval()
    rows = [json.loads(line) for line in BUNDLED.read_text(encoding="utf-8").splitlines()][:12]
    agree = total = 0
    for r in rows:
        question, answer = (m["value"] for m in r["conversations"])
        prompt = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)
        p_ids = tok(prompt, add_special_tokens=False).input_ids
        a_ids = tok(answer, add_special_tokens=False).input_ids
        with torch.no_grad():
            logits = model(torch.tensor([p_ids + a_ids])).logits[0]
        greedy = logits[len(p_ids) - 1:-1].argmax(-1).tolist()
        agree += sum(g == a for g, a in zip(greedy, a_ids))
        total += len(a_ids)
    # Measured: 0.97 for the shipped answers, 0.67 for the same answers paired with the wrong questions.
    assert agree / total >= 0.90, f"{agree}/{total} answer tokens are the model's greedy choice"


def test_read_checks_names_the_file_and_line_of_a_bad_entry(tmp_path):
    from replay.build import read_checks
    from utils.io_utils import DataFileError

    good = tmp_path / "checks.jsonl"
    good.write_text('{"question": " A? ", "answers": ["4", "four"]}\n\n{"question": "B?", "answers": ["x"]}\n')
    assert read_checks(good) == {"A?": ["4", "four"], "B?": ["x"]}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "A?", "answers": ["4"]}\n{"question": "B?", "answers": []}\n')
    with pytest.raises(DataFileError, match=r"bad.jsonl:2: 'answers'"):
        read_checks(bad)


def test_check_rows_drops_wrong_answers_and_keeps_unchecked_prompts():
    from replay.build import check_rows

    rows = replay_rows(["How many legs does an insect have?", "What is 2 plus 2?", "Describe rain."],
                       ["An insect has 8 legs.", "2 + 2 is four.", "Rain is water falling."])
    kept, dropped = check_rows(rows, {"How many legs does an insect have?": ["6", "six"],
                                      "What is 2 plus 2?": ["4", "four"]})
    assert [r["conversations"][0]["value"] for r in kept] == ["What is 2 plus 2?", "Describe rain."]
    assert [r["conversations"][1]["value"] for r in dropped] == ["An insect has 8 legs."]


def test_ensure_replay_with_checks_filters_a_second_file_from_the_same_answers(tmp_path, monkeypatch, tiny_model_dir):
    import replay.build as rb

    prompts, bundled = _bundle_for(tmp_path, monkeypatch, tiny_model_dir)  # answers: "a." to A?, "b." to B?
    checks = tmp_path / "checks.jsonl"
    checks.write_text('{"question": "A?", "answers": ["zz"]}\n{"question": "B?", "answers": ["b"]}\n')
    every = rb.ensure_replay(str(tiny_model_dir), prompts, max_new_tokens=64)
    checked = rb.ensure_replay(str(tiny_model_dir), prompts, max_new_tokens=64, checks_path=checks)
    assert checked != every and every.read_text() == bundled.read_text()  # the unchecked file is untouched
    assert [json.loads(line)["conversations"][1]["value"] for line in checked.read_text().splitlines()] == ["b."]
    checks.write_text('{"question": "B?", "answers": ["b"]}\n')  # other checks: another file, both rows pass
    rechecked = rb.ensure_replay(str(tiny_model_dir), prompts, max_new_tokens=64, checks_path=checks)
    assert rechecked != checked and len(rechecked.read_text().splitlines()) == 2


def test_finetune_passes_replay_checks_and_names_a_missing_file(tmp_path, monkeypatch):
    import replay.build as rb
    from finetune import mix_in_replay
    from finetuning.args import DataArguments
    from utils.io_utils import DataFileError

    prompts, checks = tmp_path / "p.txt", tmp_path / "checks.jsonl"
    prompts.write_text("A?\n")
    checks.write_text('{"question": "A?", "answers": ["x"]}\n')
    seen = {}

    def fake_ensure(model, prompts_path, **kwargs):
        seen.update(kwargs)
        out = tmp_path / "replay.jsonl"
        out.write_text("{}\n")
        return out

    monkeypatch.setattr(rb, "ensure_replay", fake_ensure)
    args = DataArguments(data_path="d.jsonl", replay_prompts=str(prompts), replay_checks=str(checks))
    assert mix_in_replay(args, "m") == (f"d.jsonl,{tmp_path / 'replay.jsonl'}", [str(tmp_path / "replay.jsonl")])
    assert seen["checks_path"] == checks
    args.replay_checks = "none"
    mix_in_replay(args, "m")
    assert seen["checks_path"] is None
    args.replay_checks = str(tmp_path / "missing.jsonl")
    with pytest.raises(DataFileError, match="--replay_checks .*missing.jsonl: no such file"):
        mix_in_replay(args, "m")


def test_shipped_checks_name_only_shipped_prompts():
    """A check whose question is not a line of the prompts file (a typo, an edited prompt) would silently
    check nothing."""
    from replay.build import read_checks
    from utils.recipe import REPO_ROOT

    checks = read_checks(REPO_ROOT / "examples" / "replay_checks.jsonl")
    prompts = set(read_prompts(REPO_ROOT / "examples" / "replay_prompts.txt"))
    assert len(checks) > 200 and set(checks) <= prompts


def test_python_m_replay_cpu_workers_reaches_the_hf_backend(tmp_path, monkeypatch):
    """--cpu_workers picks the generation layout (one process with torch's threads, or 1-thread worker
    processes); a layout that never reached the backend would silently fall back to the default."""
    import replay.__main__ as cli
    from generation import hf

    made = []

    class Recorder(EchoBackend):
        def __init__(self, model_name_or_path, **kwargs):
            super().__init__()
            made.append(kwargs)

    monkeypatch.setattr(hf, "HFBackend", Recorder)
    prompts = tmp_path / "p.txt"
    prompts.write_text("A?\n")
    for flag, expected in (([], "auto"), (["--cpu_workers", "1"], "1")):
        out = tmp_path / f"r{len(made)}.jsonl"
        assert cli.main(["--recipe", "none", "--prompts", str(prompts), "--output", str(out), *flag]) == 0
        assert made[-1]["workers"] == expected and out.exists()
