"""The fine-tuning launcher: torchrun over every GPU of every node, or over CPU processes here.

    bash shells/finetune_lora_ds.sh                                   # default model, datasets/qa_pairs.jsonl
    bash shells/finetune_lora_ds.sh -m default -d datasets/qa_pairs.jsonl --deepspeed configs/ds_zero2.json
    bash shells/finetune_lora_ds.sh -m MODEL -d DATA -o output/run1 -- --num_train_epochs 3 --learning_rate 1e-4

Everything after ``--`` goes to finetune.py. The launcher first runs finetune.py once with
``--prepare_data_only True`` (one process, all cores: makes the replay rows the recipe asks for and
checks the data), then ``exec``s torchrun. Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR
(127.0.0.1), MASTER_PORT (a free port on one node, 29500 across nodes), GPUS_PER_NODE (detected:
visible CUDA devices).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from finetuning.precision import parse_bf16
from utils.logging_utils import redact_command
from utils.processes import free_port
from utils.recipe import REPO_ROOT, repo_path

COLLECT_HINT = "Make it with: bash shells/collect_data.sh  (or pass -d FILE)"


@dataclass
class LaunchArguments:
    model: str = field(default="default", metadata={
        "aliases": ["-m", "--model_name_or_path"],
        "help": "Base model: 'default' (embedded SmolLM2-135M-Instruct), a folder or a hub id."})
    data: str = field(default="datasets/qa_pairs.jsonl", metadata={
        "aliases": ["-d", "--data_path"],
        "help": "Training JSONL (make it with shells/collect_data.sh); a,b mixes files."})
    output_dir: str | None = field(default=None, metadata={
        "aliases": ["-o"], "help": "Adapter + checkpoints (default output/<data file stem>)."})
    deepspeed: str | None = field(default=None, metadata={"help": "A DeepSpeed JSON from configs/ (configs/README.md)."})
    wandb_key: str | None = field(default=None, metadata={
        "help": "Log to wandb online; the key reaches wandb through WANDB_API_KEY and is never printed."})
    nproc: int | None = field(default=None, metadata={
        "help": "Processes per node when no GPU is visible (default: 2 on 2+ cores, 1 thread each)."})
    bf16: str | None = field(default=None, metadata={
        "nargs": "?", "const": "True",
        "help": "auto | True | False, passed to finetune.py --bf16 (default: the recipe's, auto: bf16 on a GPU or CPU "
                "that computes it natively, else fp32; docs/finetuning.md)."})
    recipe: str | None = field(default=None, metadata={
        "help": "Recipe YAML for finetune.py (default configs/recipes/default.yaml; 'none' = built-in defaults)."})


def parse(argv: list[str]) -> tuple[LaunchArguments, list[str]]:
    """``(launcher arguments, finetune.py arguments)``: everything after ``--`` goes to finetune.py.

    Raises ``SystemExit(2)`` for an unknown launcher flag (finetune.py flags belong after ``--``).
    """
    from transformers import HfArgumentParser

    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = HfArgumentParser(LaunchArguments, description=__doc__, prog="finetune_lora_ds.sh", epilog=(
        "Entry points: bash shells/finetune_lora_ds.sh | python -m finetuning.launch | ku-finetune"))
    args, unknown = parser.parse_args_into_dataclasses(args=own, return_remaining_strings=True)
    try:
        parse_bf16(args.bf16 if args.bf16 is not None else "auto")
    except ValueError as exc:
        parser.error(str(exc))
    if unknown:
        parser.error(f"unknown flag(s) {redact_command(unknown)} (finetune.py flags go after --)")
    return args, extra


def layout(nproc: int | None, environ: dict) -> tuple[int, dict]:
    """Processes per node and the environment they need.

    GPUs: one process per visible device. CPU: ``nproc`` processes (default 2 on 2+ cores) of
    cores/nproc threads each. Measured on the 2-core dev machine (SmolLM2-135M, LoRA, global batch 4,
    other jobs running): 2 procs x 1 thread 2.5 s/step, 1 proc x 1 thread 4.9 s/step, 1 proc x 2
    threads 50 s/step (OpenMP threads stall whenever a core is taken by another job).
    """
    env: dict = {}
    gpus = environ.get("GPUS_PER_NODE")
    if gpus is None:
        import torch

        gpus = str(torch.cuda.device_count())
    if gpus != "0":
        return int(gpus), env
    cores = os.cpu_count() or 1
    procs = nproc or (2 if cores >= 2 else 1)
    env["DS_ACCELERATOR"] = "cpu"
    env["OMP_NUM_THREADS"] = environ.get("OMP_NUM_THREADS") or str(max(1, cores // procs))
    return procs, env


def build(argv: list[str], environ: dict | None = None) -> tuple[list[str], list[str], dict]:
    """``(prepare command, torchrun command, environment)`` for ``argv``; raises ``FileNotFoundError``
    (message with a hint) for missing data or DeepSpeed config."""
    environ = dict(os.environ if environ is None else environ)
    args, extra = parse(argv)
    for f in (p.strip() for p in args.data.split(",") if p.strip()):
        if not Path(f).is_file():
            raise FileNotFoundError(f"Training data {f} not found. {COLLECT_HINT}")
    if args.deepspeed:
        args.deepspeed = str(repo_path(args.deepspeed))  # configs/ds_zero2.json works from any folder
    if args.deepspeed and not Path(args.deepspeed).is_file():
        configs = " ".join(sorted(p.name for p in (REPO_ROOT / "configs").glob("ds_*.json")))
        raise FileNotFoundError(f"DeepSpeed config {args.deepspeed} not found; choose one of: {configs}")
    procs, env = layout(args.nproc, environ)
    nnodes = environ.get("NNODES", "1")
    port = environ.get("MASTER_PORT") or (str(free_port()) if nnodes == "1" else "29500")
    # torchrun's --rdzv settings are left to their defaults (static c10d on MASTER_ADDR:MASTER_PORT).
    dist = ["--nproc_per_node", str(procs), "--nnodes", nnodes, "--node_rank", environ.get("NODE_RANK", "0"),
            "--master_addr", environ.get("MASTER_ADDR", "127.0.0.1"), "--master_port", port]
    output = args.output_dir or f"output/{Path(args.data.split(',')[0]).stem}"
    ft = ["--model_name_or_path", args.model, "--data_path", args.data, "--output_dir", output]
    if args.recipe:
        ft += ["--recipe", args.recipe]
    if args.deepspeed:
        ft += ["--deepspeed", args.deepspeed]
    if args.bf16 is not None:
        ft += ["--bf16", args.bf16]
    ft += extra
    env.update({"HF_HUB_OFFLINE": environ.get("HF_HUB_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false"})
    if args.wandb_key:
        env["WANDB_API_KEY"] = args.wandb_key
    elif not environ.get("WANDB_API_KEY"):
        env["WANDB_MODE"] = environ.get("WANDB_MODE", "offline")
    script = str(REPO_ROOT / "finetune.py")
    return ([sys.executable, script, *ft, "--prepare_data_only", "True"],
            [sys.executable, "-m", "torch.distributed.run", *dist, script, *ft], env)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        prepare, torchrun, env = build(argv)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    full_env = {**os.environ, **env}
    procs = torchrun[torchrun.index("--nproc_per_node") + 1]
    wandb = "online" if full_env.get("WANDB_API_KEY") else "offline"
    print(f"[finetune] nproc_per_node={procs} NNODES={full_env.get('NNODES', '1')} NODE_RANK={full_env.get('NODE_RANK', '0')} "
          f"wandb={wandb}", flush=True)
    print(f"[finetune] {redact_command(prepare[1:])}", flush=True)
    # One process with every core builds the replay rows; the torchrun processes then find them cached.
    # On several nodes each node's launcher does this for its own processes.
    rc = subprocess.call(prepare, env={**full_env, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}
                         if "DS_ACCELERATOR" in env else full_env)
    if rc != 0:
        return rc
    print(f"[finetune] torchrun {redact_command(torchrun[3:])}", flush=True)
    os.execvpe(torchrun[0], torchrun, full_env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
