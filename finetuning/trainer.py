"""Trainer pieces for finetune.py: the training loss (answer positions only; replay rows distilled from the
base model with --replay_loss kl), loss recorder, time-budget projection, run summary, sampler.

Every file is written by the world-rank-0 process only and atomically (write, then rename), so a
crash leaves the previous version, never half a file.
"""
from __future__ import annotations

import io
import logging
import math
import os
import resource
import shutil
import sys
import time

import numpy as np
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from utils.io_utils import atomic_write_bytes, atomic_write_json

logger = logging.getLogger(__name__)

PROJECTION_FILE = "time_projection.json"
SUMMARY_FILE = "train_summary.json"


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The newest ``checkpoint-N`` in ``output_dir`` that holds ``trainer_state.json``.

    The Trainer writes that file last, so a folder without it was cut short by a crash; transformers'
    own ``get_last_checkpoint`` would pick it and fail to resume.
    """
    if not os.path.isdir(output_dir):
        return None
    steps = sorted((int(name.split("-")[1]), name) for name in os.listdir(output_dir)
                   if name.startswith("checkpoint-") and name.split("-")[1].isdigit())
    for step, name in reversed(steps):
        if os.path.isfile(os.path.join(output_dir, name, "trainer_state.json")):
            return os.path.join(output_dir, name)
        logger.warning("%s is incomplete (no trainer_state.json: interrupted while saving); skipped",
                       os.path.join(output_dir, name))
    return None


def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """Sequence positions whose logits the loss needs: ``p`` where any row has a label at ``p + 1``.

    Position ``p`` predicts token ``p + 1``; the prompt (system, user turn, template) is labelled -100, so
    its logits only cost time. One index set serves the whole batch (``logits_to_keep`` takes 1-D
    indices); a row without a label at a kept position contributes -100 there, which the loss ignores.
    """
    return (labels[:, 1:] != -100).any(dim=0).nonzero().squeeze(-1)


def answer_only_loss(model, inputs: dict, num_items_in_batch=None) -> torch.Tensor:
    """The causal-LM loss of ``model(**inputs)``, with logits computed only where a label follows.

    Equal to the model's own loss (same function, same reduction, ``num_items_in_batch`` included): the
    skipped positions have no label. It skips the output layer and cross-entropy at the prompt's positions,
    about half of them in the default recipe's rows; on the default model that measured 3% faster
    (benchmarks/README.md, variant ``answer_logits``); the skipped work grows with the vocabulary.
    """
    labels = inputs["labels"]
    keep = answer_positions(labels)
    outputs = model(**{k: v for k, v in inputs.items() if k != "labels"}, logits_to_keep=keep, use_cache=False)
    logits = outputs.logits
    loss_function = getattr(model, "loss_function", None)
    if loss_function is None:  # wrappers (DDP, DeepSpeed) hide it; the loss is the same for every causal LM
        from transformers.loss.loss_utils import ForCausalLMLoss as loss_function
    return loss_function(logits=logits, labels=None, vocab_size=logits.shape[-1],
                         num_items_in_batch=num_items_in_batch, shift_labels=labels[:, keep + 1])


def _rows_upto(inputs: dict, rows: torch.Tensor, length: int) -> dict:
    """The model inputs of the batch rows ``rows``, cut after ``length`` tokens (a causal model's logits up to
    there do not depend on what follows). A 4-D shared-prefix mask is cut on both token axes."""
    out = {}
    for key, value in inputs.items():
        value = value[rows]
        out[key] = value[:, :, :length, :length] if value.dim() == 4 else value[:, :length]
    return out


def replay_distill_loss(model, base_model, inputs: dict, num_items_in_batch=None, positions_only: bool = True):
    """Cross-entropy at the labelled tokens not flagged in ``inputs["distill"]``, plus at the flagged ones (replay
    rows) ``KL(p_base || p_model)`` over the whole vocabulary, summed over tokens and divided by
    ``num_items_in_batch`` (``None``: the number of labelled tokens), the normalisation of the plain loss.

    ``p_base`` is ``base_model`` (the unwrapped PEFT model of ``model``) with its adapter disabled, without
    gradients, run on the batch rows that hold a flagged token only, cut after the last one, and projected onto
    the vocabulary only at the positions scored by KL. With ``positions_only`` the trained forward also computes
    logits only where a label follows (:func:`answer_only_loss`). Both forwards get the same ids, positions and
    (2-D or shared-prefix 4-D) mask, so packed and shared-prefix sequences are scored as each row alone.
    Cross-entropy against the base model's whole distribution, not its greedy token, avoids sharpening the model
    toward the base model's mode (the loss of a row equal to the base model is 0, not its entropy).
    """
    import torch.nn.functional as F

    labels = inputs["labels"]
    model_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "distill")}
    targets = labels[:, 1:]  # position p predicts token p + 1
    scored = targets != -100
    kl_at = scored & inputs["distill"][:, 1:].bool()
    if positions_only:
        keep = answer_positions(labels)
        logits = model(**model_inputs, logits_to_keep=keep, use_cache=False).logits
    else:
        keep = torch.arange(targets.shape[1], device=labels.device)
        logits = model(**model_inputs, use_cache=False).logits[:, :-1]
    logits = logits.float()
    kl_mask = kl_at[:, keep]
    ce_targets = targets[:, keep].masked_fill(kl_mask, -100)
    loss = F.cross_entropy(logits.flatten(0, 1), ce_targets.flatten(), ignore_index=-100, reduction="sum")
    if kl_mask.any():
        rows = kl_at.any(dim=1)
        base_at = kl_at[rows]
        base_keep = base_at.any(dim=0).nonzero().squeeze(-1)
        with torch.no_grad(), base_model.disable_adapter():
            base_logits = base_model(**_rows_upto(model_inputs, rows, int(base_keep[-1]) + 1),
                                     logits_to_keep=base_keep, use_cache=False).logits
        # Both selections run row by row, then position by position: the i-th vectors score the same token.
        log_p_base = F.log_softmax(base_logits.float()[base_at[:, base_keep]], dim=-1)
        log_p_model = F.log_softmax(logits[kl_mask], dim=-1)
        loss = loss + F.kl_div(log_p_model, log_p_base, log_target=True, reduction="sum")
    return loss / (num_items_in_batch if num_items_in_batch is not None else scored.sum())


class LengthGroupedTrainer(Trainer):
    """Trainer whose length-grouped sampler uses the dataset's own ``lengths``, and whose training loss
    computes logits only where there is a label (:func:`answer_only_loss`).

    The stock sampler only reads lengths from a ``datasets.Dataset`` column; for our torch datasets
    it would index every item, which defeats lazy tokenisation. With ``--replay_loss kl`` a batch holding
    replay rows (the collator's ``distill`` tensor) is scored by :func:`replay_distill_loss`; elsewhere the
    flag is dropped (validation: cross-entropy on every row).
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        distill = inputs.get("distill")
        if distill is not None:
            inputs = {k: v for k, v in inputs.items() if k != "distill"}
        if (distill is not None and getattr(self.args, "replay_loss", "ce") == "kl" and not return_outputs
                and "labels" in inputs):
            num_items = num_items_in_batch if self.model_accepts_loss_kwargs else None
            base_model = self.accelerator.unwrap_model(model)
            loss = replay_distill_loss(model, base_model, {**inputs, "distill": distill}, num_items,
                                       positions_only=getattr(self.args, "answer_logits_only", False))
            return self._scale_model_loss(loss, num_items_in_batch)
        plain = (return_outputs or "labels" not in inputs or self.label_smoother is not None
                 or self.compute_loss_func is not None or not getattr(self.args, "answer_logits_only", False))
        if plain:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        try:
            loss = answer_only_loss(model, inputs, num_items_in_batch if self.model_accepts_loss_kwargs else None)
        except TypeError as exc:  # an architecture whose forward() has no logits_to_keep
            if "logits_to_keep" not in str(exc):
                raise
            logger.warning("this model's forward() takes no logits_to_keep: logits at every position from now on")
            self.args.answer_logits_only = False
            return super().compute_loss(model, inputs, num_items_in_batch=num_items_in_batch)
        return self._scale_model_loss(loss, num_items_in_batch)

    def _scale_model_loss(self, loss, num_items_in_batch):
        # The same scaling as Trainer.compute_loss applies to a loss the model computed itself.
        if self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size() if self.args.n_gpu <= 1 else self.args.n_gpu)
        return loss

    def _set_signature_columns_if_needed(self):
        # The Trainer drops every item key that forward() does not take before collating (remove_unused_columns);
        # the replay rows' distill flag is for the loss, not the model, and must survive that.
        super()._set_signature_columns_if_needed()
        if "distill" not in self._signature_columns:
            self._signature_columns.append("distill")

    def _track_num_input_tokens(self, inputs):
        # A shared-prefix batch carries a 4-D mask, whose sum is not a token count: count non-pad ids
        # instead, so a shared prefix counts once per sequence (the tokens the model ran).
        mask = inputs.get("attention_mask")
        if mask is not None and mask.dim() == 4 and self.args.include_num_input_tokens_seen == "non_padding":
            inputs = {k: v for k, v in inputs.items() if k != "attention_mask"}
        return super()._track_num_input_tokens(inputs)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        lengths = getattr(dataset, "lengths", None)
        if self.args.train_sampling_strategy == "group_by_length" and lengths is not None:
            return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                        lengths=lengths)
        return super()._get_train_sampler(train_dataset)


class LossRecorderCallback(TrainerCallback):
    """Keeps the training loss of every logged step in ``path`` (a 1-D float ``.npy``).

    On resume the history is rebuilt from the checkpoint's ``trainer_state.json`` log history, which
    ends exactly at the checkpoint step, so the file continues without gap or repeat. Written at each
    checkpoint save and at the end of training.
    """

    def __init__(self, path: str):
        self.path = path
        self.losses: dict[int, float] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.losses = {h["step"]: float(h["loss"]) for h in state.log_history if "loss" in h}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses[state.global_step] = float(logs["loss"])

    def write(self, state) -> None:
        if not state.is_world_process_zero:
            return
        buf = io.BytesIO()
        np.save(buf, np.asarray([self.losses[s] for s in sorted(self.losses)], dtype=np.float32))
        atomic_write_bytes(self.path, buf.getvalue())

    def on_save(self, args, state, control, **kwargs):
        self.write(state)

    def on_train_end(self, args, state, control, **kwargs):
        self.write(state)
        if state.is_world_process_zero:
            logger.info("training loss of %d logged steps -> %s", len(self.losses), self.path)


class TimeProjectionCallback(TrainerCallback):
    """After ``fraction`` of the steps, projects the run's total time and compares it to the budget.

    The first step is timed separately (compilation, allocator warm-up, DeepSpeed init) and the rest
    extrapolated from the mean of the following steps. Rank 0 decides and broadcasts, so every rank
    stops at the same step when ``abort`` is set and the projection exceeds the budget.
    """

    def __init__(self, output_dir: str, budget_hours: float | None, fraction: float, abort: bool):
        self.output_dir, self.fraction, self.abort = output_dir, fraction, abort
        self.budget_s = budget_hours * 3600 if budget_hours else None
        self.projection: dict | None = None
        self.aborted = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.t0, self.t_first, self.start_step = time.perf_counter(), None, state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        done = state.global_step - self.start_step
        if done == 1:
            self.t_first = now
        total = state.max_steps - self.start_step
        target = max(2, math.ceil(self.fraction * total))
        if self.projection is not None or done < min(target, total) or self.t_first is None or done < 2:
            return
        per_step = (now - self.t_first) / (done - 1)
        projected = (self.t_first - self.t0) + per_step * (total - 1)
        will_fit = self.budget_s is None or projected <= self.budget_s
        will_fit = _broadcast_flag(will_fit, args.device)
        self.projection = {
            "projected_total_s": round(projected, 2), "budget_s": self.budget_s, "will_fit": will_fit,
            "steps_measured": done, "total_steps": total, "first_step_s": round(self.t_first - self.t0, 3),
            "mean_step_s": round(per_step, 4), "elapsed_s": round(now - self.t0, 2),
            "abort_on_projected_overrun": self.abort,
        }
        if state.is_world_process_zero:
            atomic_write_json(os.path.join(self.output_dir, PROJECTION_FILE), self.projection)
            budget = f"{self.budget_s / 3600:.2f} h" if self.budget_s else "no budget"
            logger.info("time projection after %d/%d steps: %.2f h in total (%s) -> %s", done, total,
                        projected / 3600, budget, "fits" if will_fit else "OVERRUN")
        if not will_fit and self.abort:
            self.aborted = True
            control.should_training_stop = True
            control.should_save = False


def _broadcast_flag(flag: bool, device) -> bool:
    """Rank 0's value of ``flag`` on every rank (identity outside distributed runs)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return flag
    t = torch.tensor([int(flag)], device=device)
    torch.distributed.broadcast(t, src=0)
    return bool(t.item())


def save_final_model(trainer, output_dir: str) -> None:
    """Save the adapter (or model) and tokenizer so each file appears in ``output_dir`` atomically.

    Every rank calls ``trainer.save_model`` (under ZeRO-3 it gathers the partitioned weights before
    PEFT picks the adapter's, which avoids the empty-adapter bug), into a staging folder; rank 0 then
    renames each finished file into place, so a crash never leaves a half-written adapter file.
    """
    staging = os.path.join(output_dir, ".saving")
    if trainer.is_world_process_zero():
        # Leftovers of a save that crashed are partial: they must never be renamed into place below.
        shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(staging)
    if trainer.is_world_process_zero():
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
        shutil.rmtree(staging, ignore_errors=True)
        logger.info("saved %s to %s", "adapter" if hasattr(trainer.model, "peft_config") else "model", output_dir)


def peak_memory_mb() -> dict:
    """Peak GPU memory (if any) and peak resident memory of this process, in MiB."""
    out = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024 ** 2), 1)}
    if torch.cuda.is_available():
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return out


def write_summary(trainer, train_metrics: dict, wall_s: float, extra: dict) -> dict:
    """Log and save ``<output_dir>/train_summary.json`` (rank 0): steps, tokens/s, losses, time, memory.

    ``tokens`` counts real (non-padding) input tokens of this session, summed over all ranks; a shared
    prompt prefix (``--shared_prefix_tokens``) counts once per sequence, as the model ran it.
    """
    state = trainer.state
    tokens = state.num_input_tokens_seen - getattr(trainer, "_initial_num_input_tokens_seen", 0)
    evals = [h["eval_loss"] for h in state.log_history if "eval_loss" in h]
    losses = [h["loss"] for h in state.log_history if "loss" in h]
    summary = {
        "global_step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch,
        "train_loss_mean": train_metrics.get("train_loss"), "train_loss_last": losses[-1] if losses else None,
        "eval_loss_last": evals[-1] if evals else None, "tokens": int(tokens),
        "tokens_per_s": round(tokens / wall_s, 1) if wall_s > 0 else None,
        "train_runtime_s": train_metrics.get("train_runtime"), "wall_s": round(wall_s, 2),
        "world_size": trainer.args.world_size, **peak_memory_mb(), **extra,
    }
    if trainer.is_world_process_zero():
        atomic_write_json(os.path.join(trainer.args.output_dir, SUMMARY_FILE), summary)
        logger.info("summary: %s", ", ".join(f"{k}={v}" for k, v in summary.items()))
    return summary
