"""LoRA supervised fine-tuning on collected QA data (HF Trainer; torchrun / DeepSpeed ready).

    python finetune.py --data_path datasets/qa_pairs.jsonl --output_dir output/lora
    bash shells/finetune_lora_ds.sh -m default -d datasets/qa_pairs.jsonl --deepspeed configs/ds_zero2.json

Settings come from the recipe (--recipe, default configs/recipes/default.yaml), then the command line.
When --replay_prompts names a file, the base model's own answers to those prompts are made (once,
cached; for the default model and prompts, copied from examples/replay_answers.jsonl) and mixed into
the training data; when --text_replay_openers names one, so are the base model's plain-text continuations
of those openers (examples/text_replay.jsonl for the default model and openers). Writes the adapter (its
update multiplied by --adapter_scale) and tokenizer to --output_dir, the per-step loss to
<loss_dir>/<run_name>.npy, <output_dir>/train_summary.json and, after a few steps,
<output_dir>/time_projection.json. ``python finetune.py --help`` lists every flag; docs/finetuning.md
explains the choices.
"""
from __future__ import annotations

import logging
import os
import sys
import time

import torch
from transformers import set_seed

if not torch.cuda.is_available():
    # DeepSpeed otherwise guesses its accelerator (and warns); on CPU hosts it must use its CPU one.
    os.environ.setdefault("DS_ACCELERATOR", "cpu")

from finetuning.args import parse_args  # noqa: E402
from finetuning.data import SFTCollator, build_datasets  # noqa: E402
from finetuning.model import load_model, load_tokenizer  # noqa: E402
from finetuning.trainer import (  # noqa: E402
    LengthGroupedTrainer,
    LossRecorderCallback,
    TimeProjectionCallback,
    last_complete_checkpoint,
    save_final_model,
    write_summary,
)
from utils.io_utils import DataFileError  # noqa: E402
from utils.logging_utils import setup_logging  # noqa: E402
from utils.processes import die_with_parent  # noqa: E402
from utils.recipe import RecipeError, optional_file  # noqa: E402

logger = logging.getLogger("finetune")
EXIT_WRITE_ERROR, EXIT_USER_ERROR, EXIT_PROJECTED_OVERRUN = 1, 2, 3


def main(argv: list[str] | None = None, extra_callbacks: list | None = None) -> int:
    """Parse -> data -> model + LoRA -> Trainer -> train -> save. Returns the process exit code.

    ``extra_callbacks`` (tests, notebooks) are added to the Trainer's callbacks.
    """
    setup_logging()
    if os.environ.get("LOCAL_RANK") is not None:
        # torchrun forwards Ctrl+C and SIGTERM to its workers; a SIGKILL of torchrun would leave them in a collective
        die_with_parent()
    try:
        model_args, data_args, lora_args, args = parse_args(argv)
        data_args.data_path, replay_files = mix_in_replay(data_args, model_args.model_name_or_path)
        if args.replay_loss == "kl" and not replay_files:
            logger.warning("--replay_loss kl: there are no replay rows (--replay_prompts, --text_replay_openers) to "
                           "distill; every row is trained with cross-entropy")
        tokenizer = load_tokenizer(model_args, data_args)
        train_set, eval_set = build_datasets(data_args, tokenizer, seed=args.seed,
                                             distill_paths=replay_files if args.replay_loss == "kl" else ())
    except (DataFileError, RecipeError, ValueError) as exc:  # user errors: a message, not a traceback
        logger.error("%s", exc)
        return EXIT_USER_ERROR
    if data_args.prepare_data_only:
        logger.info("data ready (%d training rows): %s", len(train_set), data_args.data_path)
        return 0
    resume = args.resume_from_checkpoint
    if resume in ("True", "true", "latest"):
        resume = last_complete_checkpoint(args.output_dir)
        logger.info("resuming from %s", resume or "scratch (no complete checkpoint in output_dir)")
    elif resume and not os.path.isfile(os.path.join(resume, "trainer_state.json")):
        logger.error("%s is not a complete checkpoint (no trainer_state.json)", resume)
        return EXIT_USER_ERROR
    # Seed before the LoRA weights are drawn (the Trainer seeds only later, in its constructor): the same
    # --seed then gives the same run, and different seeds differ in initialisation as well as data order.
    set_seed(args.seed)
    if args.process_index == 0:
        logger.info("precision: %s (%s)", "bf16" if args.bf16 else "fp32", args.bf16_reason)
    model = load_model(model_args, lora_args, args, tokenizer)

    losses = LossRecorderCallback(os.path.join(args.loss_dir, f"{args.run_name}.npy"))
    projection = TimeProjectionCallback(args.output_dir, args.time_budget_hours, args.projection_fraction,
                                        args.abort_on_projected_overrun)
    shared = data_args.shared_prefix_tokens
    if shared and model_args.attn_implementation != "sdpa":
        logger.info("--shared_prefix_tokens needs --attn_implementation sdpa (its 4-D boolean mask): rows are padded")
        shared = 0
    collator = SFTCollator(tokenizer.pad_token_id, shared_prefix_tokens=shared)
    trainer = LengthGroupedTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                         data_collator=collator, processing_class=tokenizer,
                         callbacks=[losses, projection, *(extra_callbacks or [])])
    if "wandb" in args.report_to and os.environ.get("WANDB_MODE") == "offline" and args.process_index == 0:
        logger.info("wandb is offline (no key): the run goes to %s/wandb; upload it later with "
                    "`wandb sync %s/wandb/offline-run-*`", os.environ["WANDB_DIR"], os.environ["WANDB_DIR"])

    t0 = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=resume)
    except DataFileError as exc:  # a row that cannot be tokenised, met late with --lazy_preprocess
        logger.error("%s", exc)
        return EXIT_USER_ERROR
    if projection.aborted:
        logger.error("stopped: projected %.2f h exceeds the budget of %.2f h (see %s/time_projection.json)",
                     projection.projection["projected_total_s"] / 3600, args.time_budget_hours, args.output_dir)
        return EXIT_PROJECTED_OVERRUN
    if eval_set is not None:
        trainer.evaluate()
    try:
        save_final_model(trainer, args.output_dir)
        if trainer.is_world_process_zero():
            scale_saved_adapter(args.output_dir, lora_args.adapter_scale)
    except OSError as exc:  # a full disk, a read-only folder: each file already there stays whole
        logger.error("cannot save the adapter to %s: %s", args.output_dir, exc.strerror or exc)
        return EXIT_WRITE_ERROR
    trainer.save_state()
    write_summary(trainer, result.metrics, time.perf_counter() - t0,
                  {"run_name": args.run_name, "data_path": data_args.data_path,
                   "model_name_or_path": model_args.model_name_or_path,
                   "bf16": bool(args.bf16), "precision_reason": args.bf16_reason,
                   "truncated_rows": getattr(train_set, "num_truncated", 0),
                   "dropped_rows": getattr(train_set, "num_dropped", 0),
                   "projection": projection.projection, "adapter_scale": lora_args.adapter_scale})
    return 0


def scale_saved_adapter(output_dir: str, scale: float) -> None:
    """Apply ``--adapter_scale`` to the adapter just saved. A stamp left by an earlier run in the same folder
    described weights that have now been overwritten, so it goes first."""
    from finetuning.scale import STAMP, scale_adapter

    stale = os.path.join(output_dir, STAMP)
    if os.path.exists(stale):
        os.remove(stale)
    if scale != 1:
        scale_adapter(output_dir, scale)


def mix_in_replay(data_args, model_name_or_path: str) -> tuple[str, list[str]]:
    """``(--data_path plus the replay files, the replay files)``: the replay file when ``--replay_prompts`` names
    one and the text-replay file when ``--text_replay_openers`` names one (each made once, then cached). The
    second item names the rows ``--replay_loss kl`` distills."""
    try:
        prompts = optional_file(data_args.replay_prompts, "--replay_prompts")
        checks = optional_file(data_args.replay_checks, "--replay_checks")
        openers = optional_file(data_args.text_replay_openers, "--text_replay_openers")
    except FileNotFoundError as exc:
        raise DataFileError(str(exc)) from None
    paths = [data_args.data_path]
    if prompts is not None:
        from replay.build import ensure_replay

        replay = ensure_replay(model_name_or_path, prompts, max_new_tokens=data_args.replay_max_new_tokens,
                               checks_path=checks)
        if replay.stat().st_size:
            logger.info("replay rows (the base model's own answers to %s): %s", prompts, replay)
            paths.append(str(replay))
        else:
            logger.warning("the base model gave no usable answer to %s (replies cut mid-sentence are dropped, and so "
                           "are replies that fail --replay_checks); training without replay rows", prompts)
    if openers is not None:
        from replay.text import ensure_text_replay

        text = ensure_text_replay(model_name_or_path, openers, max_new_tokens=data_args.text_replay_max_new_tokens)
        if text.stat().st_size:
            logger.info("text replay rows (the base model's continuations of %s): %s", openers, text)
            paths.append(str(text))
        else:
            logger.warning("every continuation of %s was degenerate (replay/text.py); training without text replay "
                           "rows", openers)
    return ",".join(paths), paths[1:]


if __name__ == "__main__":
    sys.exit(main())
