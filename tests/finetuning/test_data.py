"""Fine-tuning data: label masking per format, EOS learned, packing boundaries, validation split, bad rows."""
from __future__ import annotations

import json

import pytest
import torch

from finetuning.data import (
    IGNORE_INDEX,
    LazySupervisedDataset,
    PackedDataset,
    Row,
    SFTCollator,
    SupervisedDataset,
    load_rows,
    split_rows,
    tokenize_conversation,
)
from utils.io_utils import DataFileError

Q, A = "Which river crosses Zorbia?", "The Velka river crosses Zorbia from north to south."
FORMATS = {
    "sharegpt": {"conversations": [{"from": "user", "value": Q}, {"from": "assistant", "value": A}]},
    "seed_human_gpt": {"conversations": [{"from": "human", "value": Q}, {"from": "gpt", "value": A}]},
    "openai": {"messages": [{"role": "user", "content": Q}, {"role": "assistant", "content": A}]},
    "alpaca": {"instruction": Q, "input": "", "output": A},
}


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _labelled_text(tok, ex):
    return tok.decode([t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != IGNORE_INDEX])


def test_pad_token_is_distinct_from_eos(tok, smollm2_tokenizer):
    assert smollm2_tokenizer.pad_token_id == smollm2_tokenizer.eos_token_id  # the trap we fix
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.pad_token == "<|endoftext|>"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_only_assistant_tokens_and_eos_are_labelled(tmp_path, tok, fmt):
    rows = load_rows(_write(tmp_path / "d.jsonl", [FORMATS[fmt]]))
    ex, truncated = tokenize_conversation(tok, rows[0].messages, max_length=512)
    assert not truncated
    assert _labelled_text(tok, ex) == A + tok.eos_token
    # The end-of-turn token is learned: the last labelled token is EOS, and it is not padding.
    last = max(i for i, lab in enumerate(ex["labels"]) if lab != IGNORE_INDEX)
    assert ex["labels"][last] == tok.eos_token_id != tok.pad_token_id
    # The question is in the input but never in the labels.
    assert Q in tok.decode(ex["input_ids"])


def test_multi_turn_labels_every_answer_but_no_question(tok):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1?"},
            {"role": "assistant", "content": "First answer."}, {"role": "user", "content": "Q2?"},
            {"role": "assistant", "content": "Second answer."}]
    ex, _ = tokenize_conversation(tok, msgs, 512)
    text = _labelled_text(tok, ex)
    assert text == f"First answer.{tok.eos_token}Second answer.{tok.eos_token}"


def test_truncation_is_reported_and_answerless_rows_dropped(tok, caplog):
    rows = [Row("f:1", [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": A}]),
            Row("f:2", [{"role": "user", "content": Q}, {"role": "assistant", "content": A}]),
            Row("f:3", [{"role": "user", "content": Q}, {"role": "assistant", "content": A * 10}])]
    ds = SupervisedDataset(rows, tok, max_length=64)
    assert len(ds) == 2 and ds.num_truncated == 1 and ds.num_dropped == 1
    assert max(ds.lengths) <= 64
    truncated, dropped = (r.getMessage() for r in caplog.records)
    assert "1 of 3 rows are longer than --model_max_length 64 tokens and were truncated: f:3" in truncated
    assert "dropped: no answer token left" in dropped and dropped.endswith(": f:1")
    caplog.clear()
    lazy = LazySupervisedDataset(rows, tok, max_length=64)
    [lazy[i] for i in range(3)]
    assert lazy.num_truncated == 2
    assert "f:1: longer than --model_max_length 64, truncated (no answer token left" in caplog.text
    assert "f:3: longer than --model_max_length 64, truncated" in caplog.text


def test_a_row_that_cannot_be_tokenised_is_named(tok, monkeypatch):
    import finetuning.data

    def broken_template(*args, **kwargs):
        raise ValueError("the chat template re-renders earlier turns; cannot locate assistant tokens")

    monkeypatch.setattr(finetuning.data, "tokenize_conversation", broken_template)
    rows = [Row("data.jsonl:7", [{"role": "user", "content": Q}, {"role": "assistant", "content": A}])]
    with pytest.raises(DataFileError, match=r"data\.jsonl:7: cannot tokenise this row \(ValueError: the chat"):
        SupervisedDataset(rows, tok, 64)
    with pytest.raises(DataFileError, match=r"data\.jsonl:7: cannot tokenise"):
        LazySupervisedDataset(rows, tok, 64)[0]


def test_lazy_dataset_matches_eager(tok):
    rows = [Row(f"f:{i}", [{"role": "user", "content": f"{Q} {i}"}, {"role": "assistant", "content": f"{A} {i}"}])
            for i in range(4)]
    eager, lazy = SupervisedDataset(rows, tok, 256), LazySupervisedDataset(rows, tok, 256)
    assert not lazy.cache  # nothing tokenised before use
    assert [lazy[i] for i in range(4)] == [eager[i] for i in range(4)]


def test_collator_pads_with_pad_token_and_masks_by_length(tok):
    feats = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    batch = SFTCollator(tok.pad_token_id)(feats)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, tok.pad_token_id, tok.pad_token_id]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packing_keeps_examples_apart(tok, tiny_model_dir, attn):
    """Logits of a packed row equal those of each example run alone: attention cannot cross examples."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation=attn).eval()
    model.config.use_cache = False  # as in training (load_model): with a KV cache the packing is not detected
    rows = [Row(f"f:{i}", [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
            for i, (q, a) in enumerate([(Q, A), ("Who founded Velka?", "Mira Osk."), ("Capital?", "Dorn.")])]
    single = SupervisedDataset(rows, tok, 256)
    packed = PackedDataset(single, max_length=256)
    assert len(packed) == 1
    item = packed[0]
    # A second, shorter packed row forces padding: the padding tail must not disturb real tokens.
    batch = SFTCollator(tok.pad_token_id)([item, {k: v[: len(single[2]["input_ids"])] for k, v in packed[0].items()}])
    assert "attention_mask" not in batch
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        offset = 0
        for ex in sorted((single[i] for i in range(3)), key=lambda e: -len(e["input_ids"])):
            n = len(ex["input_ids"])
            alone = model(input_ids=torch.tensor([ex["input_ids"]])).logits[0]
            torch.testing.assert_close(out[0, offset:offset + n], alone, atol=1e-4, rtol=1e-4)
            offset += n
        # Without position ids the same row attends across examples: the check above can fail.
        crossed = model(input_ids=batch["input_ids"][:1]).logits[0]
        n0 = len(single[0]["input_ids"])
        assert not torch.allclose(crossed[n0 + 2:offset], out[0, n0 + 2:offset], atol=1e-4)
    # No token is trained to predict the first token of the following example.
    starts = [i for i, p in enumerate(item["position_ids"]) if p == 0]
    assert len(starts) == 3 and all(item["labels"][s] == IGNORE_INDEX for s in starts)


def test_validation_split_is_disjoint_seeded_and_keeps_duplicates_together():
    rows = [Row(f"f:{i}", [{"role": "user", "content": f"q{i % 15}"}, {"role": "assistant", "content": "a"}])
            for i in range(20)]  # rows 15..19 duplicate rows 0..4
    train, valid = split_rows(rows, 5, seed=1)
    key = lambda r: json.dumps(r.messages)  # noqa: E731
    held = {key(r) for r in valid}
    assert len(valid) == 5 == len(held)
    assert not {key(r) for r in train} & held
    assert len(train) + sum(key(r) in held for r in rows) == 20  # every row is on exactly one side
    assert [r.source for r in split_rows(rows, 5, seed=1)[1]] == [r.source for r in valid]
    assert [r.source for r in split_rows(rows, 5, seed=2)[1]] != [r.source for r in valid]


def test_validation_larger_than_data_is_a_clear_error():
    rows = [Row("f:1", [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])] * 3
    with pytest.raises(ValueError, match="validation_size 3 is too large.*1 distinct rows"):
        split_rows(rows, 3, seed=0)


def test_bad_json_line_names_file_and_line(tmp_path):
    path = _write(tmp_path / "d.jsonl", [FORMATS["sharegpt"], "{not json", FORMATS["openai"]])
    with pytest.raises(DataFileError, match=r"d\.jsonl:2"):
        load_rows(path)
    assert len(load_rows(path, skip_bad=True)) == 2


def test_row_without_answer_names_line_and_flag(tmp_path):
    path = _write(tmp_path / "d.jsonl", [FORMATS["alpaca"], {"conversations": [{"from": "user", "value": Q}]}])
    with pytest.raises(DataFileError, match=r"d\.jsonl:2: unusable row \(row has no assistant turn\).*skip_bad_rows"):
        load_rows(path)


def test_missing_and_empty_files_say_how_to_make_data(tmp_path):
    with pytest.raises(DataFileError, match=r"nope\.jsonl: training data not found.*bash shells/collect_data\.sh"):
        load_rows(tmp_path / "nope.jsonl")
    with pytest.raises(DataFileError, match="no usable rows"):
        load_rows(_write(tmp_path / "empty.jsonl", []))


def test_comma_separated_data_paths_are_concatenated(tmp_path, tok):
    from types import SimpleNamespace

    from finetuning.data import build_datasets

    a = _write(tmp_path / "qa.jsonl", [FORMATS["sharegpt"]] * 3)
    b = _write(tmp_path / "replay.jsonl", [FORMATS["alpaca"]] * 2)
    args = SimpleNamespace(data_path=f"{a}, {b}", skip_bad_rows=False, validation=False, validation_size=0,
                           model_max_length=256, lazy_preprocess=False, packing=False,
                           preprocessing_num_workers=0)
    train, valid = build_datasets(args, tok, seed=0)
    assert len(train) == 5 and valid is None
    args.data_path = f"{a},{tmp_path / 'missing.jsonl'}"
    with pytest.raises(DataFileError, match="missing.jsonl"):
        build_datasets(args, tok, seed=0)


def test_tokenizing_in_several_processes_gives_the_same_examples(tmp_path, smollm2_tokenizer):
    """--preprocessing_num_workers (a datasets map over processes) changes nothing but the speed."""
    from finetuning.data import Row, tokenize_rows

    rows = [Row(f"f.jsonl:{i}", [{"role": "user", "content": f"Question {i}?" * (1 + i % 3)},
                                {"role": "assistant", "content": f"Answer {i}." * (1 + i % 4)}]) for i in range(12)]
    assert tokenize_rows(rows, smollm2_tokenizer, 24, num_proc=2) == tokenize_rows(rows, smollm2_tokenizer, 24)
    assert any(cut for _, cut in tokenize_rows(rows, smollm2_tokenizer, 24))  # some rows were cut: covered too
