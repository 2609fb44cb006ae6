"""Shared-prefix batches: the system prompt computed once per sequence, the same loss and gradients."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

import finetune
from finetuning.data import IGNORE_INDEX, Row, SFTCollator, SupervisedDataset, shared_prefix_length
from finetuning.trainer import answer_only_loss
from tests.finetuning.test_answer_loss import _loss_and_grads
from tests.finetuning.test_train import base_args, make_data

PAIRS = [("Which river crosses Zorbia?", "The Velka river crosses Zorbia from north to south."),
         ("Who founded Velka?", "Mira Osk."), ("Capital?", "Dorn."), ("When was the Velka bridge built?", "In 1881.")]


def _features(tok):
    rows = [Row(f"f:{i}", [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
            for i, (q, a) in enumerate(PAIRS)]
    data = SupervisedDataset(rows, tok, 256)
    return [data[i] for i in range(len(data))]


def test_prefix_stops_before_the_first_label_and_at_the_first_difference():
    a = {"input_ids": [1, 2, 3, 4, 5, 6], "labels": [-100, -100, -100, -100, 5, 6]}
    b = {"input_ids": [1, 2, 3, 9, 9, 9, 9], "labels": [-100, -100, -100, -100, -100, 9, 9]}
    assert shared_prefix_length([a, b]) == 3          # ids differ at index 3
    c = {"input_ids": [1, 2, 3, 4, 7], "labels": [-100, -100, -100, 4, 7]}
    # c's first label is at 3: its first own token (3) must carry no label, so the prefix is 0..1
    assert shared_prefix_length([a, c]) == 2
    assert shared_prefix_length([a, {"input_ids": [8, 2], "labels": [-100, 2]}]) == 0


def test_rows_share_the_system_prompt_and_see_only_it_and_themselves(tok):
    feats = _features(tok)
    prefix = shared_prefix_length(feats)
    assert tok.decode(feats[0]["input_ids"][:prefix]).startswith("<|im_start|>system\n")
    own = [len(f["input_ids"]) - prefix for f in feats]
    budget = prefix + (sum(own) + 1) // 2       # about half the rows per sequence
    batch = SFTCollator(tok.pad_token_id, shared_prefix_tokens=budget)(feats)
    ids, labels, pos, mask = batch["input_ids"], batch["labels"], batch["position_ids"], batch["attention_mask"]
    assert mask.shape == (ids.shape[0], 1, ids.shape[1], ids.shape[1]) and mask.dtype == torch.bool
    assert ids.shape[0] == 2
    by_ids = {tuple(f["input_ids"][prefix:]): f for f in feats}
    seen = []
    for s in range(ids.shape[0]):
        assert ids[s, :prefix].tolist() == feats[0]["input_ids"][:prefix]
        start = prefix
        while start < ids.shape[1] and pos[s, start] == prefix:   # each row restarts at position `prefix`
            end = start + 1
            while end < ids.shape[1] and pos[s, end] == pos[s, end - 1] + 1:
                end += 1
            f = by_ids[tuple(ids[s, start:end].tolist())]
            assert labels[s, start:end].tolist() == f["labels"][prefix:]
            assert pos[s, start:end].tolist() == list(range(prefix, len(f["input_ids"])))
            rows_mask = mask[s, 0, start:end]
            assert rows_mask[:, :prefix].all()                            # the prefix: always visible
            assert torch.equal(rows_mask[:, start:end], torch.ones(end - start, end - start).tril().bool())
            assert not rows_mask[:, prefix:start].any() and not rows_mask[:, end:].any()   # other rows: never
            seen.append(f)
            start = end
        assert (ids[s, start:] == tok.pad_token_id).all() and (labels[s, start:] == IGNORE_INDEX).all()
    assert sorted(map(id, seen)) == sorted(map(id, feats))
    assert int((ids != tok.pad_token_id).sum()) == sum(own) + prefix * ids.shape[0]


def test_rows_are_dealt_to_sequences_of_even_length():
    prefix = [1, 2, 3]
    feats = [{"input_ids": prefix + [7] * n, "labels": [-100] * 4 + [7] * (n - 1)} for n in (40, 10, 30, 20, 25, 25)]
    batch = SFTCollator(0, shared_prefix_tokens=3 + 50)(feats)
    assert batch["input_ids"].shape == (3, 3 + 50)             # 150 own tokens / 50 per sequence: 3 even ones
    assert int((batch["input_ids"] == 0).sum()) == 0           # 40+10, 30+20, 25+25: no padding at all


def test_packed_rows_and_single_rows_are_padded_as_before(tok):
    feats = _features(tok)
    plain = SFTCollator(tok.pad_token_id)(feats)
    assert plain["attention_mask"].dim() == 2
    single = SFTCollator(tok.pad_token_id, shared_prefix_tokens=256)(feats[:1])
    assert torch.equal(single["input_ids"], plain["input_ids"][:1, :len(feats[0]["input_ids"])])


@pytest.mark.parametrize("budget", [64, 1024])
def test_shared_prefix_batch_gives_the_padded_batchs_loss_and_gradients(tok, tiny_model_dir, budget):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.config.use_cache = False
    feats = _features(tok)
    padded = SFTCollator(tok.pad_token_id)(feats)
    shared = SFTCollator(tok.pad_token_id, shared_prefix_tokens=budget)(feats)
    assert shared["attention_mask"].dim() == 4
    assert (shared["labels"] != IGNORE_INDEX).sum() == (padded["labels"] != IGNORE_INDEX).sum()
    items = (padded["labels"] != IGNORE_INDEX).sum()
    ref, ref_grads = _loss_and_grads(model, lambda: answer_only_loss(model, padded, items))
    got, got_grads = _loss_and_grads(model, lambda: answer_only_loss(model, shared, items))
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    assert ref_grads.keys() == got_grads.keys() and ref_grads
    for name in ref_grads:
        torch.testing.assert_close(got_grads[name], ref_grads[name], rtol=1e-4, atol=1e-5, msg=name)
    # Without its mask the shared batch lets rows read each other: the comparison above can fail (the
    # random tiny model's loss moves little, but 10x more than the tolerance above allows).
    crossed = {k: v for k, v in shared.items() if k != "attention_mask"}
    with torch.no_grad():
        assert abs(answer_only_loss(model, crossed, items) - ref) > 1e-3


def test_training_with_a_shared_prefix_gives_the_same_loss_curve_on_fewer_tokens(tmp_path, tiny_model_dir):
    data = make_data(tmp_path / "qa.jsonl")
    curves, tokens = {}, {}
    for budget in ("256", "0"):
        out, losses = tmp_path / f"out-{budget}", tmp_path / f"losses-{budget}"
        # No LoRA dropout: its random mask is drawn per tensor element, and the two layouts have different
        # shapes, so with dropout the same seed drops different values and the runs part after step 1.
        rc = finetune.main(base_args(tiny_model_dir, data, out, losses, "--max_steps", "3",
                                     "--shared_prefix_tokens", budget, "--lora_dropout", "0"))
        assert rc == 0
        curves[budget] = np.load(losses / "qa.npy")
        tokens[budget] = json.loads((out / "train_summary.json").read_text())["tokens"]
    assert curves["256"].shape == (3,)
    np.testing.assert_allclose(curves["256"], curves["0"], rtol=1e-4)
    # 3 steps x 4 rows: the shared run computes the system prompt once per sequence instead of once per row.
    assert 0 < tokens["256"] < tokens["0"]


def test_eager_attention_pads_rows_apart(tmp_path, tiny_model_dir, caplog):
    caplog.set_level(logging.INFO, logger="finetune")
    data = make_data(tmp_path / "qa.jsonl")
    rc = finetune.main(base_args(tiny_model_dir, data, tmp_path / "out", tmp_path / "losses", "--max_steps", "1",
                                 "--attn_implementation", "eager"))
    assert rc == 0
    assert "--shared_prefix_tokens needs --attn_implementation sdpa" in caplog.text


def test_rows_too_long_to_share_a_sequence_are_padded_apart():
    prefix = [1, 2, 3]
    feats = [{"input_ids": prefix + [7] * 100, "labels": [-100] * 4 + [7] * 99} for _ in range(2)]
    batch = SFTCollator(0, shared_prefix_tokens=150)(feats)     # 3 + 200 > 150: one row per sequence = padding
    assert batch["attention_mask"].dim() == 2 and batch["input_ids"].shape == (2, 103)
