"""Command-line arguments of finetune.py, as dataclasses parsed by ``HfArgumentParser``.

The flags of the original toolkit are accepted (``--validation True --validation_size N``,
``--lazy_preprocess True``, ``--use_lora True``, ``--key``, ``--use_wandb``, ``--wandb_run_name`` ...)
next to all of ``transformers.TrainingArguments``. The defaults below are generic; the measured
recipe (``configs/recipes/default.yaml``, section ``finetune``) replaces them unless ``--recipe none``,
and the command line wins over both (utils/recipe.py).
"""
from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers

from finetuning.precision import resolve_bf16
from utils.logging_utils import redact_argv
from utils.recipe import DEFAULT_RECIPE, apply_defaults, recipe_section, split_recipe_flag

logger = logging.getLogger(__name__)
# A WANDB_DIR chosen by the user wins; otherwise each run logs into its own output_dir.
_USER_WANDB_DIR = os.environ.get("WANDB_DIR")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(default="default", metadata={
        "help": "Base model: 'default' (the embedded SmolLM2-135M-Instruct), a local folder or a hub id."})
    attn_implementation: str = field(default="sdpa", metadata={
        "help": "Attention kernel: sdpa (CPU/GPU), eager, or flash_attention_2 (GPU with flash-attn)."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom modelling code from the checkpoint."})


@dataclass
class DataArguments:
    data_path: str = field(default="datasets/qa_pairs.jsonl", metadata={
        "help": "JSONL training data: sharegpt 'conversations' (from/value), OpenAI 'messages' or alpaca rows, "
                "and plain-text {'text': ...} rows (no chat template; the collector's --statement_rows). "
                "A comma-separated list of files is concatenated (e.g. QA pairs + replay data)."})
    lazy_preprocess: bool = field(default=False, metadata={
        "help": "Tokenise each row on first use instead of all up front (fast start on large files)."})
    preprocessing_num_workers: int = field(default=0, metadata={
        "help": "Tokenise up front in this many processes (a `datasets` map; for large files). 0 = in this process."})
    validation: bool = field(default=False, metadata={"help": "Hold out --validation_size rows for evaluation."})
    validation_size: int = field(default=100, metadata={
        "help": "Rows held out (disjoint from training, seeded by --seed) when --validation True."})
    skip_bad_rows: bool = field(default=False, metadata={
        "help": "Skip malformed JSONL lines/rows with a count instead of stopping at the first one."})
    packing: bool = field(default=False, metadata={
        "help": "Pack short examples into sequences of --model_max_length tokens; attention never crosses examples."})
    shared_prefix_tokens: int = field(default=256, metadata={
        "help": "Batch rows that start with the same tokens (the chat template's system prompt) as sequences of up to "
                "this many tokens that compute the prefix once and keep each row's attention to the prefix and "
                "itself: the same loss and gradients with fewer tokens (benchmarks/bench_finetune.py, variant "
                "shared_prefix). Needs --attn_implementation sdpa; ignored with --packing. 0 = pad rows apart."})
    model_max_length: int = field(default=1024, metadata={
        "help": "Maximum tokens per example (longer rows are truncated and reported) or per packed sequence."})
    replay_prompts: str = field(default="none", metadata={
        "help": "General prompts (one per line) whose answers by the base model itself are mixed into the training "
                "data so the update keeps what the model knew (self-distillation replay, python -m replay); "
                "'none' = no replay rows."})
    replay_max_new_tokens: int = field(default=128, metadata={"help": "Length cap of each replayed answer."})
    replay_checks: str = field(default="none", metadata={
        "help": "JSONL of {question, answers} for some replay prompts: a replay row for such a prompt is trained only "
                "if its answer contains one of the answers (the base model's wrong answers are left out); "
                "'none' = every replay row."})
    text_replay_openers: str = field(default="none", metadata={
        "help": "Plain-text openers (one per line, e.g. examples/text_replay_openers.txt) whose continuations, "
                "sampled from the base model without the chat template, are mixed into the training data as text "
                "rows trained on every token (text replay, meant to hold the model's plain-text distribution in place; "
                "python -m replay --kind text); 'none' = no text rows."})
    text_replay_max_new_tokens: int = field(default=96, metadata={
        "help": "Length cap of each text-replay sample (tokens after its opener)."})
    prepare_data_only: bool = field(default=False, metadata={
        "help": "Build the replay rows (cached), check the data, and exit without training (the launcher runs "
                "this once before torchrun so every process finds the replay rows ready)."})


@dataclass
class LoraArguments:
    use_lora: bool = field(default=True, metadata={"help": "Train a LoRA adapter (False: full fine-tuning)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str = field(default="all-linear", metadata={
        "help": "Comma-separated module names, or 'all-linear' (every linear projection except the output head)."})
    modules_to_save: str | None = field(default=None, metadata={
        "help": "Comma-separated modules trained in full and saved with the adapter (e.g. 'embed_tokens,lm_head'). "
                "Off unless asked: it multiplies the adapter size and the risk of forgetting."})
    q_lora: bool = field(default=False, metadata={"help": "QLoRA: 4-bit base weights (needs a CUDA GPU and bitsandbytes)."})
    adapter_scale: float = field(default=1.0, metadata={
        "help": "Multiply the saved adapter's update by this factor after training (finetuning/scale.py): below 1 "
                "the model moves part of the way back to the base (weight-space interpolation, WiSE-FT), giving up "
                "some of what it learned for less forgetting. Plain LoRA only; checkpoints stay unscaled."})

    def __post_init__(self):
        if self.adapter_scale < 0:
            raise ValueError(f"--adapter_scale {self.adapter_scale}: must be >= 0 (1 = the adapter as trained)")
        if self.adapter_scale != 1 and (not self.use_lora or self.modules_to_save):
            raise ValueError(f"--adapter_scale {self.adapter_scale} scales a plain LoRA update; it cannot be used "
                             "with --use_lora False or --modules_to_save")


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    output_dir: str = field(default="output/finetune", metadata={"help": "Adapter, tokenizer, checkpoints, summary."})
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule (Trainer's; DeepSpeed configs define none)."})
    logging_steps: float = field(default=1, metadata={"help": "Log (and record the loss) every N optimizer steps."})
    train_sampling_strategy: str = field(default="group_by_length", metadata={
        "help": "random | group_by_length (batches of similar length: little padding) | sequential."})
    answer_logits_only: bool = field(default=True, metadata={
        "help": "Compute the output layer and the loss only at positions followed by a label (the answers), not over "
                "the prompt: the same loss, less work (benchmarks/bench_finetune.py, variant answer_logits)."})
    replay_loss: str = field(default="ce", metadata={
        "help": "Loss of the replay rows (those of --replay_prompts and --text_replay_openers; never rows of --data_path). "
                "ce: cross-entropy on their tokens, the base model's greedy answers and samples. kl: at those tokens "
                "KL(base || updated) over the whole vocabulary, the base distribution from the same model with its LoRA "
                "adapter switched off (learning without forgetting): it holds the base model's whole next-token "
                "distribution instead of sharpening it toward the greedy answer. The QA rows keep cross-entropy and "
                "both are summed per token with the same normalisation. Costs one more forward pass, without gradients, "
                "over the batch rows that hold replay rows. Works with --packing and --shared_prefix_tokens (the flag is "
                "per token, and the base pass gets the same positions and mask) and under DDP and DeepSpeed ZeRO-2/3; "
                "needs --use_lora True, "
                "and refuses --label_smoothing_factor. The validation loss stays cross-entropy."})
    include_num_input_tokens_seen: str = field(default="non_padding", metadata={
        "help": "Count tokens for the throughput summary: non_padding | all | no."})
    bf16: str = field(default="auto", metadata={
        "nargs": "?", "const": "True",
        "help": "auto | True | False. True: the base weights in bfloat16 under bf16 autocast, the LoRA weights and "
                "optimizer in fp32 (finetuning/precision.py). auto: bf16 on a CUDA device that supports it and on a CPU "
                "with amx_bf16 or avx512_bf16 that torch's oneDNN supports (not with DeepSpeed on a CPU), else fp32. "
                "DeepSpeed configs' "
                "\"bf16\": {\"enabled\": \"auto\"} follow the choice."})
    ddp_find_unused_parameters: bool | None = field(default=False, metadata={
        "help": "DDP unused-parameter search; off because every LoRA weight gets a gradient."})
    key: str | None = field(default=None, metadata={
        "help": "wandb API key. Handed to wandb through WANDB_API_KEY, then erased here: never printed or saved."})
    use_wandb: bool = field(default=True, metadata={
        "help": "Log to wandb: online with a key (--key or WANDB_API_KEY), otherwise offline in <output_dir>/wandb."})
    wandb_run_name: str | None = field(default=None, metadata={"help": "Run name for wandb (alias of --run_name)."})
    loss_dir: str = field(default="losses", metadata={"help": "Folder of the per-step training loss <run_name>.npy."})
    time_budget_hours: float | None = field(default=None, metadata={
        "help": "Time budget of this run; the projection after --projection_fraction of the steps is compared to it."})
    abort_on_projected_overrun: bool = field(default=False, metadata={
        "help": "Stop (non-zero exit) as soon as the projected total time exceeds --time_budget_hours."})
    projection_fraction: float = field(default=0.05, metadata={
        "help": "Fraction of the steps measured before projecting the total time (at least 2 steps)."})

    def __post_init__(self):
        if self.replay_loss not in ("ce", "kl"):
            raise ValueError(f"--replay_loss {self.replay_loss!r}: must be ce or kl")
        if self.replay_loss == "kl" and self.label_smoothing_factor:
            raise ValueError("--replay_loss kl cannot be combined with --label_smoothing_factor "
                             f"{self.label_smoothing_factor}: the distillation loss has no smoothed form; set one to its default")
        if not 0 < self.projection_fraction <= 1:
            raise ValueError(f"--projection_fraction must be in (0, 1], got {self.projection_fraction}")
        if self.key:
            # Hand the secret to wandb and drop it, so neither logs, args dumps nor checkpoints hold it.
            os.environ["WANDB_API_KEY"] = self.key
            self.key = None
        if self.wandb_run_name and not self.run_name:
            self.run_name = self.wandb_run_name
        if self.use_wandb:
            report = self.report_to if isinstance(self.report_to, list) else [self.report_to or "none"]
            report = [r for r in report if r not in ("none", None)]
            self.report_to = report + (["wandb"] if "wandb" not in report else [])
            if not os.environ.get("WANDB_API_KEY") and not os.environ.get("WANDB_MODE"):
                os.environ["WANDB_MODE"] = "offline"
            os.environ["WANDB_DIR"] = _USER_WANDB_DIR or str(Path(self.output_dir))
            Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)
        if not torch.cuda.is_available():
            self.dataloader_pin_memory = False  # nothing to pin memory for without an accelerator
        # From here on bf16 is the plain bool transformers, accelerate and DeepSpeed's "auto" read.
        self.bf16, self.bf16_reason = resolve_bf16(self.bf16, deepspeed=bool(self.deepspeed))
        if self.bf16 and not torch.cuda.is_available():
            self.use_cpu = True  # transformers refuses CPU bf16 (autocast on CPU) without it
        if self.deepspeed and not torch.cuda.is_available() and os.environ.get("LOCAL_RANK") is not None:
            self._configure_cpu_deepspeed()
        elif not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # Without use_cpu, accelerate builds no process group on a GPU-less host: every torchrun
            # process would then train alone on the whole data set (world size 1), doing the same work
            # N times. use_cpu + gloo makes it real data-parallel training (MULTI_CPU).
            self.use_cpu = True
            self.ddp_backend = self.ddp_backend or "gloo"
        super().__post_init__()


    def _configure_cpu_deepspeed(self) -> None:
        """Let DeepSpeed run data-parallel on CPU processes (gloo) under torchrun.

        transformers/accelerate only start a process group for DeepSpeed when a GPU backend exists; on a
        CPU host they silently fall back to one process while DeepSpeed's config counts the world size
        wrong. We start the gloo group ourselves, mark the shared state as DeepSpeed and ask
        TrainingArguments to use it.
        """
        from accelerate import PartialState
        from accelerate.utils import DistributedType

        state = PartialState(cpu=True, backend="gloo")
        state.distributed_type = DistributedType.DEEPSPEED
        import deepspeed

        # deepspeed.comm must wrap the gloo group too: ZeRO-3's zero.Init reads its world size there.
        deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False)
        config = self.accelerator_config
        if config is None:
            config = {}
        elif isinstance(config, str):
            config = json.loads(Path(config).read_text())
        elif not isinstance(config, dict):
            config = config.to_dict()
        self.accelerator_config = {**config, "use_configured_state": True}


def build_parser(recipe: str | None) -> transformers.HfArgumentParser:
    """The parser of every finetune.py flag, with the ``finetune`` section of ``recipe`` as defaults."""
    parser = transformers.HfArgumentParser(
        (ModelArguments, DataArguments, LoraArguments, TrainingArguments),
        description=f"LoRA / full supervised fine-tuning on collected QA data. --recipe FILE (default {DEFAULT_RECIPE}; "
                    "'none' = the built-in defaults) sets the defaults shown below from its 'finetune' section.",
        epilog="Entry points: python finetune.py")
    apply_defaults(parser, recipe_section(recipe, "finetune"), f"{recipe} (section finetune)")
    return parser


def parse_args(argv: list[str] | None = None):
    """Parse ``argv`` (``None``: sys.argv) into (model, data, lora, training) argument objects.

    Raises ``ValueError`` (incl. :class:`~utils.recipe.RecipeError`) for a bad recipe or invalid values.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    recipe, rest = split_recipe_flag(argv)
    parser = build_parser(recipe)
    model_args, data_args, lora_args, training_args = parser.parse_args_into_dataclasses(args=rest)
    sys.argv[:] = redact_argv(sys.argv)  # parsed: wandb records sys.argv in its run files, secrets hidden
    if training_args.replay_loss == "kl" and not lora_args.use_lora:
        raise ValueError("--replay_loss kl needs --use_lora True: the base model's distribution comes from the same "
                         "model with its LoRA adapter switched off, and full fine-tuning keeps no base model")
    if not training_args.run_name or training_args.run_name == training_args.output_dir:
        # The loss file is named after the run: default to the data file's stem (qa_pairs_001.npy ...).
        training_args.run_name = Path(data_args.data_path.split(",")[0].strip()).stem
    if data_args.validation and training_args.eval_strategy == "no":
        training_args.eval_strategy = transformers.IntervalStrategy("epoch")
    elif not data_args.validation and training_args.eval_strategy != "no":
        logger.warning("--eval_strategy %s ignored: there is no evaluation set without --validation True",
                       training_args.eval_strategy)
        training_args.eval_strategy = transformers.IntervalStrategy("no")
    return model_args, data_args, lora_args, training_args
