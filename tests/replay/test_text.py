"""Text replay (replay/text.py): the base model's plain-text continuations of the openers, filtered, cached and
bundled like the chat replay, and mixed into training by finetune.py when --text_replay_openers names a file."""
from __future__ import annotations

import json

import pytest

from replay import text as rt
from replay.build import read_prompts

GOOD = " was founded by farmers who drained the marsh and planted rye along the old dyke, and it grew slowly."


def test_degenerate_drops_short_and_looping_samples():
    assert rt.degenerate(GOOD) is None
    assert rt.degenerate(" is small.") == "short"
    assert rt.degenerate(" one two three four five", min_new_words=5) is None
    assert rt.degenerate(" one two three four", min_new_words=5) == "short"
    looping_lines = " the mill\nThe wheel turns and turns\nsomething else entirely here\nthe wheel turns  and turns\n"
    assert rt.degenerate(looping_lines) == "repeated"
    looping_sentences = " It rained. The farmers waited for the sun to come. The farmers waited for the sun to come."
    assert rt.degenerate(looping_sentences) == "repeated"
    # short pieces ("Yes.", "No.") may recur in ordinary prose
    assert rt.degenerate(" Yes. He asked again if the boat was ready to leave the port. Yes. Then they left.") is None


def test_text_rows_join_opener_and_continuation_and_count_the_dropped():
    rows, dropped = rt.text_rows(["The village of", "Short", "Loop"],
                                 [GOOD + "  \n", " no.", " a b c d e f. a b c d e f. a b c d e f."])
    assert [r["text"] for r in rows] == ["The village of" + GOOD]
    assert dropped == {"short": 1, "repeated": 1}
    assert rows[0]["source"] == "text_replay" and rows[0]["id"] == rt.text_rows(["The village of"], [GOOD])[0][0]["id"]
    from utils.data_formats import is_plain_text, to_messages

    assert is_plain_text(to_messages(rows[0], allow_text=True))  # the training data reads them as text rows


class FakeSampler:
    def __init__(self):
        self.calls = []

    def __call__(self, openers, max_new_tokens):
        self.calls.append((list(openers), max_new_tokens))
        return [GOOD if "bad" not in o else " x" for o in openers]


def test_build_text_replay_samples_once_per_inputs(tmp_path):
    openers = tmp_path / "o.txt"
    openers.write_text("# comment\nThe village of\nbad one\nIn the spring,\n")
    out, sampler = tmp_path / "t.jsonl", FakeSampler()
    rt.build_text_replay("m", openers, out, max_new_tokens=40, sampler=sampler)
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == \
        ["The village of" + GOOD, "In the spring," + GOOD.rstrip()]
    assert sampler.calls == [(["The village of", "bad one", "In the spring,"], 40)]
    rt.build_text_replay("m", openers, out, max_new_tokens=40, sampler=sampler)  # current: nothing sampled
    assert len(sampler.calls) == 1
    rt.build_text_replay("m", openers, out, max_new_tokens=50, sampler=sampler)  # another cap: sampled again
    openers.write_text("The village of\n")
    rt.build_text_replay("m", openers, out, max_new_tokens=50, sampler=sampler)  # other openers: sampled again
    assert len(sampler.calls) == 3


def test_ensure_text_replay_uses_the_bundle_of_the_default_model_only(tmp_path, monkeypatch, tiny_model_dir):
    import replay.build as rb
    from utils.io_utils import mark_current

    monkeypatch.setattr(rb, "default_model_dir", lambda: tiny_model_dir)
    monkeypatch.setenv("KU_REPLAY_CACHE", str(tmp_path / "cache"))
    openers = tmp_path / "o.txt"
    openers.write_text("The village of\n")
    bundled = tmp_path / "bundled.jsonl"
    bundled.write_text(json.dumps({"text": "The village of" + GOOD}) + "\n")
    mark_current(bundled, rt.text_bundled_key("default", ["The village of"], 96))
    monkeypatch.setattr(rt, "BUNDLED", bundled)
    made = []
    monkeypatch.setattr(rt, "build_text_replay", lambda *a, **k: made.append(k) or pytest.fail("sampled"))
    out = rt.ensure_text_replay(str(tiny_model_dir), openers)
    assert out.parent == tmp_path / "cache" and out.name.startswith("text-") and out.read_text() == bundled.read_text()
    # the chat replay's bundle key for the same lines is not the text replay's: neither file stands in for the other
    assert rt.text_bundled_key("default", ["x"], 96) != rb.bundled_key("default", ["x"], 96)
    assert rt.text_bundled_key(str(tmp_path / "other"), ["x"], 96) is None
    with pytest.raises(pytest.fail.Exception, match="sampled"):  # another cap: not the shipped samples
        rt.ensure_text_replay(str(tiny_model_dir), openers, max_new_tokens=64)


def test_hf_sampler_is_seeded_and_capped(tiny_model_dir):
    from transformers import AutoTokenizer

    openers = ["The village of", "In the spring of that year,", "Most engineers agree that"]
    first = rt.hf_sampler(str(tiny_model_dir), batch_size=2)(openers, 6)
    assert first == rt.hf_sampler(str(tiny_model_dir), batch_size=2)(openers, 6) and len(first) == 3
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert all(len(tok(c, add_special_tokens=False)["input_ids"]) <= 8 for c in first)  # 6 tokens (+ merges)


def test_python_m_replay_kind_text_reads_the_recipe(tmp_path, monkeypatch):
    import replay.__main__ as cli

    openers = tmp_path / "o.txt"
    openers.write_text("The village of\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"finetune:\n  text_replay_openers: {openers}\n  text_replay_max_new_tokens: 33\n")
    sampler = FakeSampler()
    monkeypatch.setattr(rt, "hf_sampler", lambda model, batch_size: sampler)
    out = tmp_path / "t.jsonl"
    assert cli.main(["--recipe", str(recipe), "--kind", "text", "--output", str(out)]) == 0
    assert sampler.calls == [(["The village of"], 33)] and json.loads(out.read_text())["text"].startswith("The village")
    assert cli.main(["--recipe", "none", "--kind", "text", "--output", str(tmp_path / "d.jsonl")]) == 0
    assert sampler.calls[-1] == (read_prompts(rt.REPO_ROOT / "examples" / "text_replay_openers.txt"), 96)
    assert cli.main(["--recipe", "none", "--kind", "prose"]) == 2


def test_finetune_mixes_in_text_replay_after_the_chat_replay(tmp_path, monkeypatch):
    import replay.build as rb
    from finetune import mix_in_replay
    from finetuning.args import DataArguments
    from utils.io_utils import DataFileError

    prompts, openers = tmp_path / "p.txt", tmp_path / "o.txt"
    prompts.write_text("A?\n")
    openers.write_text("The village of\n")
    seen = {}

    def fake(name):
        def ensure(model, path, **kwargs):
            seen[name] = kwargs
            out = tmp_path / f"{name}.jsonl"
            out.write_text("{}\n")
            return out
        return ensure

    monkeypatch.setattr(rb, "ensure_replay", fake("chat"))
    monkeypatch.setattr(rt, "ensure_text_replay", fake("text"))
    args = DataArguments(data_path="d.jsonl", replay_prompts=str(prompts), text_replay_openers=str(openers),
                         text_replay_max_new_tokens=50)
    chat, text = str(tmp_path / "chat.jsonl"), str(tmp_path / "text.jsonl")
    assert mix_in_replay(args, "m") == (f"d.jsonl,{chat},{text}", [chat, text])
    assert seen["text"] == {"max_new_tokens": 50}
    args.replay_prompts = "none"
    assert mix_in_replay(args, "m") == (f"d.jsonl,{text}", [text])
    args.text_replay_openers = "none"
    assert mix_in_replay(args, "m") == ("d.jsonl", [])
    args.text_replay_openers = str(tmp_path / "missing.txt")
    with pytest.raises(DataFileError, match="--text_replay_openers .*missing.txt: no such file"):
        mix_in_replay(args, "m")


def test_the_flags_are_recipe_settings_and_off_in_the_default_recipe(tmp_path):
    """benchmarks/knowledge.py --set finetune.text_replay_openers=... writes a recipe that finetune.py must accept."""
    import yaml

    from benchmarks.knowledge import resolved_recipe
    from finetuning.args import build_parser
    from utils.recipe import DEFAULT_RECIPE

    recipe = resolved_recipe(DEFAULT_RECIPE, ["finetune.text_replay_openers=examples/text_replay_openers.txt",
                                              "finetune.text_replay_max_new_tokens=64"])
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    ns = build_parser(str(path)).parse_args([])
    assert ns.text_replay_openers == "examples/text_replay_openers.txt" and ns.text_replay_max_new_tokens == 64
    default = build_parser(DEFAULT_RECIPE).parse_args([])
    assert default.text_replay_openers == "none" and default.text_replay_max_new_tokens == 96


def test_shipped_samples_are_current_for_the_shipped_openers():
    """examples/text_replay.jsonl must match the openers file and the default cap, or every fresh machine that
    switches text replay on samples them again."""
    from finetuning.data import load_rows
    from utils.io_utils import is_current
    from utils.data_formats import is_plain_text

    openers = read_prompts(rt.REPO_ROOT / "examples" / "text_replay_openers.txt")
    assert 150 <= len(openers) <= 200
    assert is_current(rt.BUNDLED, rt.text_bundled_key("default", openers, 96)), \
        "openers changed: run python -m replay --kind text --bundle True"
    rows = load_rows(rt.BUNDLED)
    assert all(is_plain_text(r.messages) for r in rows) and len(rows) >= 0.8 * len(openers)
    texts = [r.messages[0]["content"] for r in rows]
    starts = [max((o for o in openers if t.startswith(o)), key=len) for t in texts]
    assert starts == [o for o in openers if o in set(starts)]  # one sample per opener, in the file's order


def test_degenerate_drops_unfit_words_whole_words_only():
    assert rt.degenerate(" and then a sexy banker said the porn market had grown by ten percent this year.") == "unfit"
    # whole words only: "Essex" and "document" hold no listed word
    assert rt.degenerate(" of Essex kept a document of every harvest the county had seen since the war.") is None
