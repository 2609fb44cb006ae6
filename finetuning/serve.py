"""Serve an updated model with llama.cpp's OpenAI-compatible server (llama-cpp-python), in the foreground.

    python -m finetuning.serve --adapter runs/quickstart-X/adapter       # http://127.0.0.1:8080/v1, model 'updated'
    python -m finetuning.serve --adapter ADAPTER --gguf_type f16 --port 8000
    python -m finetuning.serve --adapter ADAPTER --lora_gguf             # base GGUF + the GGUF LoRA, applied at load
    python -m finetuning.serve --model default --output out/base-gguf --alias base --port 8081  # the base, to compare

It checks that llama-cpp-python's server can run, exports the GGUF when it is missing or stale
(finetuning/export.py; the stamps say), starts ``python -m llama_cpp.server`` with its output in
``<gguf folder>/server-<port>.log``, and says "serving" once the server answers ``/v1/models``; Ctrl-C
(or SIGTERM) stops both. No ``--chat_format`` is passed, so llama-cpp-python renders
every request with the chat template stored in the GGUF: the one the model was trained with.
``--last_n_tokens_size 0`` switches off the repeat penalty that llama-cpp-python's server applies to every
chat request by default (1.1 over the last 64 tokens, prompt included; OpenAI clients cannot send the
field): with it, a greedy request decodes like the in-process evaluation (measured: one sample question's
founding year changed from 1992 to 1982 under the penalty). Evaluate the running server with
``python evaluate.py --served updated=http://127.0.0.1:8080/v1,updated``.
llama-cpp-python[server] is an install option: ``KU_WITH_SERVE=1 bash shells/install.sh`` builds it once
(about 5 minutes on 2 cores, portable CPU flags); ``KU_WITH_TEST_DEPS=1`` includes it.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import shlex
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from finetuning.export import export_gguf
from finetuning.gguf import GGUF_TYPES, ExportError
from finetuning.llama_server import LlamaServer
from utils.logging_utils import setup_logging

logger = logging.getLogger(__name__)

#: no repeat-penalty window: plain greedy decoding, as in the evaluation (see the module docstring)
GREEDY_ARGS = ["--last_n_tokens_size", "0"]
#: the install.sh switch that adds the server (it builds llama.cpp with portable CPU flags), and the command
SERVE_SWITCH = "KU_WITH_SERVE=1"
INSTALL_COMMAND = f"{SERVE_SWITCH} bash shells/install.sh"


def server_import_error() -> str | None:
    """Why ``python -m llama_cpp.server`` cannot run in this Python, or None when it can.

    Imports the module that command runs (and so fastapi, uvicorn and llama.cpp's library), not just
    ``llama_cpp``: a llama-cpp-python installed without its ``[server]`` extra fails here too."""
    try:
        importlib.import_module("llama_cpp.server.__main__")
    except (ImportError, OSError, RuntimeError) as exc:  # RuntimeError/OSError: libllama failed to load
        return f"{type(exc).__name__}: {exc}"
    return None


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
    start_timeout: float = field(default=300.0, metadata={
        "help": "Seconds to wait for the server to answer /v1/models before giving up."})
    dry_run: bool = field(default=False, metadata={
        "help": "Export if needed and print the server command; do not start it (needs no server installed)."})


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
    """:class:`~finetuning.llama_server.LlamaServer` started as :func:`server_command` starts it (no repeat
    penalty, optionally a GGUF LoRA, any ``host``): this command's server, and that of tests and benchmarks
    that serve a model in the background."""

    def __init__(self, gguf: str | Path, log_path: str | Path, *, lora: str | Path | None = None,
                 host: str = "127.0.0.1", **kwargs):
        super().__init__(gguf, log_path, **kwargs)
        self.lora, self.host = lora, host
        # 0.0.0.0 listens everywhere, 127.0.0.1 included: the health check and the printed URL use that.
        self.base_url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}/v1"

    def command(self) -> list[str]:
        return server_command(self.gguf, host=self.host, port=self.port, alias=self.alias, n_ctx=self.n_ctx,
                              n_threads=self.threads or 0, lora=self.lora)


def parse_args(argv: list[str] | None = None) -> ServeArguments:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(ServeArguments, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="Entry points: python -m finetuning.serve | ku-serve")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def main(argv: list[str] | None = None) -> int:
    """Check the server can run, export if needed, start the server and wait on it in the foreground (with
    --dry_run: export and print its command). Exit 2 for bad input, a failed export, the server missing or
    the port taken, 1 when the server does not come up or dies, 130 when stopped by Ctrl-C or SIGTERM."""
    args = parse_args(argv)
    setup_logging()
    if not args.dry_run and (why := server_import_error()):
        # Before the export: a missing server should not cost a minute of export first.
        logger.error("llama-cpp-python[server] cannot run in %s (%s). Install it once with:\n  %s\nthen run "
                     "this again.", sys.prefix, why, INSTALL_COMMAND)
        return 2
    if not args.dry_run and _listening(args.host, args.port):
        # Another server there would answer the start-up check in place of ours.
        logger.error("something already listens on %s:%d; stop it or choose another --port", args.host, args.port)
        return 2
    try:
        res = export_gguf(args.adapter, args.output, model=args.model, base=args.base, gguf_type=args.gguf_type,
                          lora_gguf=args.lora_gguf)
    except (FileNotFoundError, ValueError, ExportError) as exc:
        logger.error("%s", exc)
        return 2
    gguf, lora = (res.base_gguf, res.lora_gguf) if args.lora_gguf else (res.gguf, None)
    server = UpdatedModelServer(gguf, Path(gguf).parent / f"server-{args.port}.log", lora=lora, host=args.host,
                                port=args.port, alias=args.alias, n_ctx=args.n_ctx, threads=args.n_threads or None,
                                start_timeout=args.start_timeout)
    evaluate = f"python evaluate.py --served {args.alias}={server.base_url},{args.alias}"
    print(shlex.join(server.command()), flush=True)
    if args.dry_run:
        print(f"dry run: not started. Once it serves, evaluate it with:\n  {evaluate}", flush=True)
        return 0
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's SIGTERM stops the server too
    try:
        server.__enter__()  # returns once /v1/models answers
        print(f"serving {gguf}{f' + {lora}' if lora else ''} at {server.base_url} as model '{args.alias}' "
              f"(log: {server.log_path}; Ctrl-C stops it); evaluate it with:\n  {evaluate}", flush=True)
        code = server.proc.wait()
        logger.error("the server exited with %s; see %s", code, server.log_path)
        return 1
    except RuntimeError as exc:  # it exited or did not answer while starting; the message names the log
        logger.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        logger.info("stopped")
        return 130
    finally:  # also when interrupted while starting, before a with-block would own the process
        server.__exit__(None, None, None)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _listening(host: str, port: int) -> bool:
    """Whether a TCP server accepts connections on ``host:port`` (0.0.0.0: on this machine)."""
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1" if host == "0.0.0.0" else host, port)) == 0


if __name__ == "__main__":
    sys.exit(main())
