"""Serve an updated model with llama.cpp's OpenAI-compatible server (llama-cpp-python), in the foreground.

    python -m finetuning.serve --adapter runs/quickstart-X/adapter       # http://127.0.0.1:8080/v1, model 'updated'
    python -m finetuning.serve --adapter ADAPTER --gguf_type f16 --port 8000
    python -m finetuning.serve --adapter ADAPTER --lora_gguf             # base GGUF + the GGUF LoRA, applied at load
    python -m finetuning.serve --model default --alias base --port 8081  # the base model, to compare with

It exports the GGUF first when it is missing or stale (finetuning/export.py; the stamps say), then replaces
itself with ``python -m llama_cpp.server``. No ``--chat_format`` is passed, so llama-cpp-python renders
every request with the chat template stored in the GGUF: the one the model was trained with.
``--last_n_tokens_size 0`` switches off the repeat penalty that llama-cpp-python's server applies to every
chat request by default (1.1 over the last 64 tokens, prompt included; OpenAI clients cannot send the
field): with it, a greedy request decodes like the in-process evaluation (measured: one sample question's
founding year changed from 1992 to 1982 under the penalty). Evaluate the running server with
``python evaluate.py --served updated=http://127.0.0.1:8080/v1,updated``.
llama-cpp-python[server] is in requirements-test.txt (``shells/install.sh`` builds it, about 5 minutes once).
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from finetuning.export import GGUF_TYPES, ExportError, export_gguf
from utils.llama_server import LlamaServer

logger = logging.getLogger(__name__)

#: no repeat-penalty window: plain greedy decoding, as in the evaluation (see the module docstring)
GREEDY_ARGS = ["--last_n_tokens_size", "0"]


@dataclass
class ServeArguments:
    adapter: str | None = field(default=None, metadata={
        "help": "PEFT adapter folder (finetune.py --output_dir, the quickstart's <run>/adapter)."})
    model: str | None = field(default=None, metadata={
        "help": "Instead of --adapter: a plain model ('default', or a folder with config.json)."})
    output: str | None = field(default=None, metadata={
        "help": "Folder of the GGUF files (default <adapter>/gguf; required with --model)."})
    base: str | None = field(default=None, metadata={
        "help": "Base model of the adapter; default: the one in adapter_config.json."})
    gguf_type: str = field(default="q8_0", metadata={"choices": list(GGUF_TYPES), "help": "GGUF type to serve."})
    lora_gguf: bool = field(default=False, metadata={
        "help": "Serve the base GGUF with the adapter as a GGUF LoRA (llama.cpp --lora) instead of the merged GGUF."})
    host: str = field(default="127.0.0.1", metadata={"help": "Address to listen on (0.0.0.0: every interface)."})
    port: int = field(default=8080, metadata={"help": "Port to listen on."})
    alias: str = field(default="updated", metadata={"help": "The model name clients ask for."})
    n_ctx: int = field(default=2048, metadata={"help": "Context length."})
    n_threads: int = field(default=0, metadata={"help": "llama.cpp threads (0: llama.cpp's own choice)."})
    dry_run: bool = field(default=False, metadata={
        "help": "Export if needed and print the server command; do not start it."})


def server_command(gguf: str | Path, *, host: str = "127.0.0.1", port: int = 8080, alias: str = "updated",
                   n_ctx: int = 2048, n_threads: int = 0, lora: str | Path | None = None) -> list[str]:
    """``python -m llama_cpp.server`` on ``gguf`` (with ``lora`` applied at load). No ``--chat_format``:
    the server then uses the GGUF's own chat template."""
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", host, "--port", str(port),
           "--n_ctx", str(n_ctx), "--model_alias", alias, *GREEDY_ARGS]
    if lora:
        cmd += ["--lora_path", str(lora)]
    if n_threads:
        cmd += ["--n_threads", str(n_threads), "--n_threads_batch", str(n_threads)]
    return cmd


class UpdatedModelServer(LlamaServer):
    """:class:`~utils.llama_server.LlamaServer` started the way this command starts it (no repeat penalty,
    optionally a GGUF LoRA): for tests and benchmarks that serve a model in the background."""

    def __init__(self, gguf: str | Path, log_path: str | Path, *, lora: str | Path | None = None, **kwargs):
        super().__init__(gguf, log_path, **kwargs)
        self.lora = lora

    def command(self) -> list[str]:
        return super().command() + GREEDY_ARGS + (["--lora_path", str(self.lora)] if self.lora else [])


def parse_args(argv: list[str] | None = None) -> ServeArguments:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(ServeArguments, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def main(argv: list[str] | None = None) -> int:
    """Export if needed, then run the server in place of this process (with --dry_run: print its command).
    Exit 2 for bad input, a failed export or llama-cpp-python[server] missing."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        res = export_gguf(args.adapter, args.output, model=args.model, base=args.base, gguf_type=args.gguf_type,
                          lora_gguf=args.lora_gguf)
    except (FileNotFoundError, ValueError, ExportError) as exc:
        logger.error("%s", exc)
        return 2
    gguf, lora = (res.base_gguf, res.lora_gguf) if args.lora_gguf else (res.gguf, None)
    cmd = server_command(gguf, host=args.host, port=args.port, alias=args.alias, n_ctx=args.n_ctx,
                         n_threads=args.n_threads, lora=lora)
    url = f"http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port}/v1"
    print(shlex.join(cmd))
    print(f"serving {gguf}{f' + {lora}' if lora else ''} at {url} as model '{args.alias}'; evaluate it with:\n"
          f"  python evaluate.py --served {args.alias}={url},{args.alias}", flush=True)
    if args.dry_run:
        return 0
    try:
        import llama_cpp.server  # noqa: F401 - only to fail with a hint rather than a traceback
    except ImportError:
        logger.error("llama-cpp-python[server] is not installed: pip install -r requirements-test.txt "
                     "(or bash shells/install.sh), then run this again")
        return 2
    # Replace this process: Ctrl-C and signals from a supervisor then reach the server itself.
    os.execv(sys.executable, cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
