"""--replay_loss kl: replay rows scored by KL(base || updated) against the adapter-free model, QA rows by
cross-entropy; the flag travels from the replay files through the datasets and collator to the loss."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import finetune
from finetuning.data import PackedDataset, Row, SFTCollator, SupervisedDataset, build_datasets
from finetuning.trainer import replay_distill_loss
from utils.data_formats import to_messages
from tests.finetuning.test_train import base_args, make_data


def _chat(q, a, distill=False, i=0):
    return Row(f"f:{i}", [{"role": "user", "content": q}, {"role": "assistant", "content": a}], distill)


def _rows():
    return [_chat("Which river crosses Zorbia?", "The Velka river crosses Zorbia from north to south.", i=0),
            _chat("Explain what a rainbow is.", "Light bent and reflected by raindrops into its colours.", True, 1),
            _chat("Who founded Velka?", "Mira Osk, in 1740.", i=2),
            Row("f:3", to_messages({"text": "The village of Dorn lay between two hills."}, allow_text=True), True)]


def _features(tok, rows=None):
    data = SupervisedDataset(rows or _rows(), tok, 256)
    return [data[i] for i in range(len(data))]


def _lora(tiny_model_dir, perturb: bool):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))
    if perturb:  # a fresh adapter's B is 0 (the base model); moved B makes it differ
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.5)
    return model.eval()


def _by_hand(model, batch):
    """(QA cross-entropy sum, replay KL sum, labelled tokens) from full logits, position by position."""
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "distill")}
    with torch.no_grad():
        upd = model(**inputs).logits.float()
        with model.disable_adapter():
            ref = model(**inputs).logits.float()
    ce = kl = 0.0
    n = 0
    labels, distill = batch["labels"], batch.get("distill", torch.zeros_like(batch["labels"], dtype=torch.bool))
    for b in range(labels.shape[0]):
        for p in range(labels.shape[1] - 1):
            target = labels[b, p + 1]
            if target == -100:
                continue
            n += 1
            log_q = upd[b, p].log_softmax(-1)
            if distill[b, p + 1]:
                log_p = ref[b, p].log_softmax(-1)
                kl += float((log_p.exp() * (log_p - log_q)).sum())
            else:
                ce += float(-log_q[target])
    return ce, kl, n


def test_a_fresh_adapter_gives_zero_kl_and_the_plain_cross_entropy_on_qa_rows(tok, tiny_model_dir):
    model = _lora(tiny_model_dir, perturb=False)
    batch = SFTCollator(tok.pad_token_id)(_features(tok))
    assert batch["distill"].any(dim=1).tolist() == [False, True, False, True]
    ce, kl, n = _by_hand(model, batch)
    assert abs(kl) < 1e-6
    loss = replay_distill_loss(model, model, batch, torch.tensor(n))
    torch.testing.assert_close(loss, torch.tensor(ce / n), rtol=1e-5, atol=1e-6)
    replay_only = SFTCollator(tok.pad_token_id)([f for f in _features(tok) if f.get("distill")])
    assert abs(float(replay_distill_loss(model, model, replay_only).detach())) < 1e-6
    # the same rows under cross-entropy score their entropy-like loss, far from 0: the check above can fail
    plain = {k: v for k, v in replay_only.items() if k != "distill"}
    assert float(model(**plain).loss) > 1


def test_a_moved_adapter_gives_the_kl_of_a_direct_computation(tok, tiny_model_dir):
    model = _lora(tiny_model_dir, perturb=True)
    batch = SFTCollator(tok.pad_token_id)(_features(tok))
    ce, kl, n = _by_hand(model, batch)
    assert kl > 1e-3
    for positions_only in (True, False):
        for items in (None, torch.tensor(n + 7)):
            got = replay_distill_loss(model, model, batch, items, positions_only=positions_only)
            want = (ce + kl) / (n if items is None else n + 7)
            torch.testing.assert_close(got, torch.tensor(want), rtol=1e-5, atol=1e-6)
    # gradients reach the adapter through the KL term alone
    replay_only = SFTCollator(tok.pad_token_id)([f for f in _features(tok) if f.get("distill")])
    model.zero_grad()
    replay_distill_loss(model, model, replay_only).backward()
    grads = [p.grad for name, p in model.named_parameters() if "lora_" in name]
    assert grads and all(g is not None for g in grads) and any(g.abs().max() > 0 for g in grads)
    assert all(p.grad is None for name, p in model.named_parameters() if "lora_" not in name)


def test_shared_prefix_and_packed_batches_give_the_padded_batchs_loss(tok, tiny_model_dir):
    """Both put several rows in one sequence: the per-token flag and the base pass's own mask keep them apart."""
    model = _lora(tiny_model_dir, perturb=True)
    feats = _features(tok)
    padded = SFTCollator(tok.pad_token_id)(feats)
    want = replay_distill_loss(model, model, padded)
    shared = SFTCollator(tok.pad_token_id, shared_prefix_tokens=256)(feats)
    assert shared["attention_mask"].dim() == 4 and shared["input_ids"].shape[0] < len(feats)
    flagged = lambda b: int((b["distill"] & (b["labels"] != -100)).sum())  # noqa: E731 - labelled replay tokens
    assert flagged(shared) == flagged(padded) > 0
    torch.testing.assert_close(replay_distill_loss(model, model, shared), want, rtol=1e-5, atol=1e-6)

    packs = PackedDataset(feats, 512)
    assert len(packs) == 1 and sum(packs[0]["distill"]) == int(padded["distill"].sum())
    packed = SFTCollator(tok.pad_token_id)([packs[0]])
    assert flagged(packed) == flagged(padded)
    torch.testing.assert_close(replay_distill_loss(model, model, packed), want, rtol=1e-5, atol=1e-6)


def _files(tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"conversations": [{"from": "user", "value": "Q?"}, {"from": "assistant", "value": "A."}]})
                  + "\n" + json.dumps({"text": "A statement row of the user's own data."}) + "\n")
    chat = tmp_path / "replay.jsonl"
    chat.write_text(json.dumps({"conversations": [{"from": "user", "value": "Name a colour."},
                                                  {"from": "assistant", "value": "Blue."}], "source": "self_distill"})
                    + "\n")
    text = tmp_path / "text_replay.jsonl"
    text.write_text(json.dumps({"text": "The village of Dorn lay between two hills.", "source": "text_replay"}) + "\n")
    return qa, chat, text


@pytest.mark.parametrize("lazy", [False, True])
def test_replay_files_rows_are_flagged_and_the_users_rows_never(tmp_path, tok, lazy):
    from finetuning.args import DataArguments

    qa, chat, text = _files(tmp_path)
    args = DataArguments(data_path=f"{qa},{chat},{text}", lazy_preprocess=lazy, model_max_length=128)
    train, _ = build_datasets(args, tok, seed=0, distill_paths=[str(chat), str(text)])
    feats = [train[i] for i in range(len(train))]
    assert [bool(f.get("distill")) for f in feats] == [False, False, True, True]  # file order: qa (2 rows), chat, text
    batch = SFTCollator(tok.pad_token_id)(feats)
    lengths = [len(f["input_ids"]) for f in feats]
    assert batch["distill"].dtype == torch.bool and batch["distill"].shape == batch["labels"].shape
    assert batch["distill"].sum(dim=1).tolist() == [0, 0, lengths[2], lengths[3]]
    # --replay_loss ce (no distill paths): batches are exactly what they were, with no flag
    train, _ = build_datasets(args, tok, seed=0)
    assert "distill" not in SFTCollator(tok.pad_token_id)([train[i] for i in range(len(train))])


def test_validation_rows_are_never_flagged(tmp_path, tok):
    from finetuning.args import DataArguments

    qa, chat, text = _files(tmp_path)
    args = DataArguments(data_path=f"{qa},{chat},{text}", validation=True, validation_size=3, model_max_length=128)
    train, valid = build_datasets(args, tok, seed=0, distill_paths=[str(chat), str(text)])
    assert len(valid) == 3 and not any("distill" in valid[i] for i in range(len(valid)))


def _replay_run(tmp_path, tiny_model_dir, monkeypatch, *extra):
    import replay.build as rb

    rows = [{"conversations": [{"from": "user", "value": f"Name colour {i}."},
                               {"from": "assistant", "value": f"Colour {i} is blue."}], "source": "self_distill"}
            for i in range(4)]
    replay_file = tmp_path / "replay.jsonl"
    replay_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(rb, "ensure_replay", lambda *a, **k: replay_file)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Name colour 0.\n")
    data, out, losses = make_data(tmp_path / "qa.jsonl", n=8), tmp_path / "out", tmp_path / "losses"
    return finetune.main(base_args(tiny_model_dir, data, out, losses, "--replay_prompts", str(prompts), *extra)), out


@pytest.mark.parametrize("layout", [[], ["--shared_prefix_tokens", "0"], ["--packing", "True", "--model_max_length", "256"]])
def test_finetune_trains_with_replay_loss_kl_and_writes_the_adapter(tmp_path, tiny_model_dir, monkeypatch, layout):
    import finetuning.trainer as trainer_module
    from safetensors.torch import load_file

    real, seen = trainer_module.replay_distill_loss, []

    def spy(model, base_model, inputs, *args, **kwargs):
        seen.append(int(inputs["distill"].any(dim=1).sum()))
        return real(model, base_model, inputs, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "replay_distill_loss", spy)
    rc, out = _replay_run(tmp_path, tiny_model_dir, monkeypatch, "--replay_loss", "kl", "--max_steps", "3",
                          "--validation", "True", "--validation_size", "2", *layout)
    assert rc == 0
    assert seen and sum(seen) > 0  # replay rows reached the distillation loss
    adapter = load_file(out / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in adapter.items())
    summary = json.loads((out / "train_summary.json").read_text())
    assert np.isfinite(summary["train_loss_last"]) and summary["eval_loss_last"] is not None


@pytest.mark.parametrize("flags, named", [(["--use_lora", "False"], "--use_lora"),
                                          (["--label_smoothing_factor", "0.1"], "--label_smoothing_factor"),
                                          (["--replay_loss", "mse"], "--replay_loss")])
def test_incompatible_settings_are_refused_naming_the_flag(tmp_path, tiny_model_dir, monkeypatch, caplog, flags, named):
    caplog.set_level(logging.ERROR)
    extra = flags if flags[0] == "--replay_loss" else ["--replay_loss", "kl", *flags]
    rc, out = _replay_run(tmp_path, tiny_model_dir, monkeypatch, *extra)
    assert rc == finetune.EXIT_USER_ERROR and not out.exists()
    assert named in caplog.text


def test_replay_loss_is_a_recipe_setting_off_in_the_default_recipe(tmp_path):
    """benchmarks/knowledge.py --set finetune.replay_loss=kl writes a recipe that finetune.py must accept."""
    import yaml

    from benchmarks.knowledge import resolved_recipe
    from finetuning.args import build_parser
    from utils.recipe import DEFAULT_RECIPE

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(resolved_recipe(DEFAULT_RECIPE, ["finetune.replay_loss=kl"])))
    assert build_parser(str(path)).parse_args([]).replay_loss == "kl"
    assert build_parser(DEFAULT_RECIPE).parse_args([]).replay_loss == "ce"


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("engine", ["ddp", "ds_zero2", "ds_zero3"])
def test_two_processes_distill_from_the_adapter_free_model(tmp_path, tiny_model_dir, engine):
    """DDP and DeepSpeed wrap the model: the base pass must still find the PEFT model, switch its adapter off and
    (ZeRO-3) gather its partitioned weights. A fresh adapter gives KL 0; a moved one more than 0."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.finetuning.test_distributed import env

    root = Path(__file__).resolve().parents[2]
    replay_file = tmp_path / "replay.jsonl"
    replay_file.write_text("".join(json.dumps({"conversations": [
        {"from": "user", "value": f"Name colour {i}."}, {"from": "assistant", "value": f"Colour {i} is blue and green."}],
        "source": "self_distill"}) + "\n" for i in range(7)))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Name colour 0.\n")
    # 1 QA row + 7 replay rows = one batch of 4 per process and step, each holding replay rows: the worker's
    # n-th loss is then step n's
    data = make_data(tmp_path / "qa.jsonl", n=1)
    flags = base_args(tiny_model_dir, data, tmp_path / "out", tmp_path / "losses", "--replay_prompts", str(prompts),
                      "--replay_loss", "kl", "--max_steps", "3", "--learning_rate", "5e-2")
    if engine != "ddp":
        flags += ["--deepspeed", f"configs/{engine}.json"]
    e = env(OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           e["MASTER_PORT"], str(Path(__file__).with_name("replay_kl_worker.py")), str(replay_file),
                           *flags], cwd=root, env=e, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    kl = {}
    for line in proc.stdout.splitlines():
        if line.startswith("replay-kl "):
            _, rank, step, value = line.split()
            kl[rank, int(step)] = float(value)
    assert {rank for rank, _ in kl} == {"0", "1"} and {step for _, step in kl} == {0, 1, 2}, log[-2000:]
    assert all(abs(v) < 1e-6 for (_, step), v in kl.items() if step == 0), kl
    assert all(v > 1e-4 for (_, step), v in kl.items() if step == 2)
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
