"""The training loss with logits only at answer positions equals the model's own loss, gradients included."""
from __future__ import annotations

import numpy as np
import torch

import finetune
from finetuning.trainer import answer_only_loss, answer_positions
from tests.finetuning.test_train import base_args, make_data


def test_answer_positions_are_the_union_of_the_rows_labelled_next_tokens():
    labels = torch.tensor([[-100, -100, 5, 6, -100],
                           [-100, -100, -100, 7, 8]])
    # p predicts p + 1: row 0 needs 1 and 2, row 1 needs 2 and 3.
    assert answer_positions(labels).tolist() == [1, 2, 3]


def _batch(vocab: int):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (3, 12), generator=g)
    labels = ids.clone()
    labels[0, :7] = -100          # long prompt
    labels[1, :3] = -100          # short prompt
    labels[2, :5] = -100
    labels[2, 9:] = -100          # right padding
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _loss_and_grads(model, fn):
    model.zero_grad(set_to_none=True)
    loss = fn()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_answer_only_loss_equals_the_models_own_loss_and_gradients(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    batch = _batch(model.config.vocab_size)
    for items in (None, torch.tensor(13)):
        ref, ref_grads = _loss_and_grads(model, lambda items=items: model(**batch, num_items_in_batch=items).loss)
        got, got_grads = _loss_and_grads(model, lambda items=items: answer_only_loss(model, batch, items))
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
        assert ref_grads.keys() == got_grads.keys() and ref_grads
        for name in ref_grads:
            torch.testing.assert_close(got_grads[name], ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_training_with_and_without_answer_logits_gives_the_same_loss_curve(tmp_path, tiny_model_dir, monkeypatch):
    import finetuning.trainer as trainer_module

    calls = []
    real = trainer_module.answer_only_loss
    monkeypatch.setattr(trainer_module, "answer_only_loss", lambda *a, **k: calls.append(1) or real(*a, **k))
    data = make_data(tmp_path / "qa.jsonl")
    curves, used = {}, {}
    for flag in ("True", "False"):
        losses = tmp_path / f"losses-{flag}"
        calls.clear()
        rc = finetune.main(base_args(tiny_model_dir, data, tmp_path / f"out-{flag}", losses, "--max_steps", "3",
                                     "--answer_logits_only", flag))
        assert rc == 0
        curves[flag], used[flag] = np.load(losses / "qa.npy"), len(calls)
    assert used == {"True": 3, "False": 0}  # one training step = one call (batch 4, no accumulation)
    assert curves["True"].shape == (3,)
    np.testing.assert_allclose(curves["True"], curves["False"], rtol=1e-4)


def test_a_model_without_logits_to_keep_falls_back_to_the_plain_loss(tmp_path, tiny_model_dir, monkeypatch, caplog):
    """An architecture whose forward() lacks the argument trains on, with a warning, instead of crashing."""
    import finetuning.trainer as trainer_module

    def no_logits_to_keep(*args, **kwargs):
        raise TypeError("forward() got an unexpected keyword argument 'logits_to_keep'")

    monkeypatch.setattr(trainer_module, "answer_only_loss", no_logits_to_keep)
    data = make_data(tmp_path / "qa.jsonl")
    rc = finetune.main(base_args(tiny_model_dir, data, tmp_path / "out", tmp_path / "losses", "--max_steps", "2"))
    assert rc == 0
    assert np.isfinite(np.load(tmp_path / "losses" / "qa.npy")).all()
    assert "takes no logits_to_keep" in caplog.text
