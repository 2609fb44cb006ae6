"""Plain-text training rows ({"text": ...}, text replay): no chat template, every token after the first trained,
through every data path (loading, split, eager/lazy/multi-process tokenising, packing, the shared-prefix collator)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from finetuning.data import (
    IGNORE_INDEX,
    LazySupervisedDataset,
    PackedDataset,
    Row,
    SFTCollator,
    SupervisedDataset,
    build_datasets,
    load_rows,
    has_prompt,
    shared_prefix_length,
    split_rows,
    tokenize_rows,
    tokenize_text,
)
from utils.data_formats import TEXT_ROLE, is_plain_text, to_messages
from utils.io_utils import DataFileError

TEXT = "The village of Orlen lies on a bend of the river, and its mill has ground flour for three centuries."
CHAT = {"conversations": [{"from": "user", "value": "Which river crosses Zorbia?"},
                          {"from": "assistant", "value": "The Velka river."}]}


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _text_row(source: str, text: str = TEXT) -> Row:
    return Row(source, [{"role": TEXT_ROLE, "content": text}])


def test_to_messages_takes_text_rows_only_for_training():
    row = {"id": "text-1", "text": TEXT, "source": "text_replay"}
    assert to_messages(row, allow_text=True) == [{"role": TEXT_ROLE, "content": TEXT}]
    assert is_plain_text(to_messages(row, allow_text=True)) and not is_plain_text(to_messages(CHAT))
    with pytest.raises(ValueError, match="none of 'conversations'"):  # evaluation sets and others: chat only
        to_messages(row)
    with pytest.raises(ValueError, match="or 'text'"):
        to_messages({"prompt": "x"}, allow_text=True)
    with pytest.raises(ValueError, match="empty or non-text 'text'"):
        to_messages({"text": "  "}, allow_text=True)
    # a chat row that also carries a "text" field stays a chat row
    assert to_messages({**CHAT, "text": "note"}, allow_text=True) == to_messages(CHAT)


def test_load_rows_reads_text_rows_and_names_a_bad_one(tmp_path):
    rows = load_rows(_write(tmp_path / "d.jsonl", [CHAT, {"text": TEXT, "id": "t"}]))
    assert [is_plain_text(r.messages) for r in rows] == [False, True] and rows[1].source.endswith("d.jsonl:2")
    with pytest.raises(DataFileError, match=r"d\.jsonl:2: unusable row \(empty or non-text 'text'\)"):
        load_rows(_write(tmp_path / "d.jsonl", [CHAT, {"text": ""}]))


def test_text_is_tokenised_without_template_or_special_tokens_and_trained_after_the_first_token(tok):
    ex, cut = tokenize_text(tok, TEXT, max_length=512)
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    assert not cut and ex["input_ids"] == ids and tok.decode(ids) == TEXT
    assert ex["labels"] == [IGNORE_INDEX] + ids[1:]
    assert not {tok.eos_token_id, tok.pad_token_id, tok.bos_token_id} & set(ids)  # no <|im_end|>, no <|endoftext|>
    short, cut = tokenize_text(tok, TEXT, max_length=5)
    assert cut and short["input_ids"] == ids[:5] and short["labels"] == [IGNORE_INDEX] + ids[1:5]


def test_training_scores_a_text_row_as_the_general_text_measure_does(tok):
    """Text replay aims at the general-text NLL: the tokens trained are exactly the tokens that measure scores."""
    from evaluation.general_text import encode_row

    ids, context = encode_row({"text": TEXT}, tok)
    ex, _ = tokenize_text(tok, TEXT, 512)
    assert ex["input_ids"] == ids and [i for i, lab in enumerate(ex["labels"]) if lab != IGNORE_INDEX] == \
        list(range(context, len(ids)))


def test_eager_lazy_and_multiprocess_tokenising_agree_on_mixed_rows(tok):
    chat = Row("f:1", to_messages(CHAT))
    rows = [chat, _text_row("f:2"), _text_row("f:3", "word " * 300), chat, _text_row("f:5", "Short text here.")]
    eager = SupervisedDataset(rows, tok, 64)
    lazy = LazySupervisedDataset(rows, tok, 64)
    assert [lazy[i] for i in range(len(rows))] == [eager[i] for i in range(len(rows))]
    assert eager.num_truncated == 1 == lazy.num_truncated and max(eager.lengths) == 64
    assert tokenize_rows(rows * 2, tok, 64, num_proc=2) == tokenize_rows(rows * 2, tok, 64)


def test_truncated_text_row_is_named(tok, caplog):
    SupervisedDataset([_text_row("data.jsonl:4", "word " * 300)], tok, 16)
    assert "were truncated: data.jsonl:4" in caplog.text


def test_split_keeps_identical_text_rows_on_one_side():
    rows = [_text_row(f"f:{i}", f"text {i % 6}") for i in range(12)] + \
        [Row("f:12", [{"role": "user", "content": "q"}, {"role": "assistant", "content": "text 0"}])]
    train, valid = split_rows(rows, 3, seed=0)
    held = {json.dumps(r.messages) for r in valid}
    assert len(valid) == 3 and not {json.dumps(r.messages) for r in train} & held
    assert len(train) + sum(json.dumps(r.messages) in held for r in rows) == 13  # each row on one side


def test_packing_keeps_the_first_text_token_untrained(tok):
    rows = [_text_row("f:1"), Row("f:2", to_messages(CHAT)), _text_row("f:3", "Another short text to pack.")]
    single = SupervisedDataset(rows, tok, 512)
    packed = PackedDataset(single, 512)
    assert len(packed) == 1
    item = packed[0]
    starts = [i for i, p in enumerate(item["position_ids"]) if p == 0]
    assert len(starts) == 3 and all(item["labels"][s] == IGNORE_INDEX for s in starts)
    trained = sum(lab != IGNORE_INDEX for lab in item["labels"])
    assert trained == sum(sum(lab != IGNORE_INDEX for lab in single[i]["labels"]) for i in range(3))


@pytest.mark.parametrize("budget", [0, 1024])
def test_a_batch_with_a_text_row_keeps_each_rows_loss_with_or_without_a_shared_prefix(tok, tiny_model_dir, budget):
    """A text row has no prompt: the chat rows of its batch share theirs, and the text row is a row of its own
    that does not see it, so the batch's loss is the token-weighted loss of each row alone (a text row that
    attended to the chat prefix would change it)."""
    from transformers import AutoModelForCausalLM

    chat = [Row(f"c:{i}", [{"role": "user", "content": f"Question number {i}?"},
                           {"role": "assistant", "content": f"Answer {i}."}]) for i in range(3)]
    data = SupervisedDataset(chat + [_text_row("t:1")], tok, 512)
    feats = [data[i] for i in range(len(data))]
    assert shared_prefix_length(feats[:3]) > 0 and shared_prefix_length(feats) == 0
    assert shared_prefix_length([feats[3], feats[3]]) == 0  # two text rows: their first token carries no label either
    assert [has_prompt(f) for f in feats] == [True, True, True, False]
    batch = SFTCollator(tok.pad_token_id, shared_prefix_tokens=budget)(feats)
    if budget:
        assert batch["attention_mask"].dim() == 4 and batch["input_ids"].numel() < 4 * max(
            len(f["input_ids"]) for f in feats)  # the chat prompt computed once
    else:
        assert batch["attention_mask"].dim() == 2 and batch["input_ids"].shape[0] == 4
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa").eval()
    with torch.no_grad():
        got = model(**batch).loss.item()
        total = count = 0
        for f in feats:
            n = sum(lab != IGNORE_INDEX for lab in f["labels"][1:])
            total += model(input_ids=torch.tensor([f["input_ids"]]), labels=torch.tensor([f["labels"]])).loss.item() * n
            count += n
        assert got == pytest.approx(total / count, rel=1e-4)
        if budget:  # the same layout with the text row allowed to see the prefix: a different loss
            leaky = dict(batch, attention_mask=batch["attention_mask"] | (batch["position_ids"][:, None, None, :] < 0))
            seg_prefix = torch.zeros_like(batch["attention_mask"])
            first = shared_prefix_length(feats[:3])
            seg_prefix[..., :first] = True
            leaky["attention_mask"] = (batch["attention_mask"] | seg_prefix) & torch.ones_like(
                batch["attention_mask"]).tril()
            assert abs(model(**leaky).loss.item() - got) > 1e-4


def test_build_datasets_mixes_chat_and_text_files(tmp_path, tok):
    qa = _write(tmp_path / "qa.jsonl", [CHAT] * 3)
    text = _write(tmp_path / "text.jsonl", [{"id": f"t{i}", "text": f"{TEXT} {i}", "source": "text_replay"}
                                            for i in range(2)])
    args = SimpleNamespace(data_path=f"{qa},{text}", skip_bad_rows=False, validation=False, validation_size=0,
                           model_max_length=256, lazy_preprocess=False, packing=False, preprocessing_num_workers=0)
    train, _ = build_datasets(args, tok, seed=0)
    assert len(train) == 5
    assert sum(train[i]["labels"][0] == IGNORE_INDEX and train[i]["labels"][1] != IGNORE_INDEX
               for i in range(5)) == 2  # the text rows: trained from their second token
