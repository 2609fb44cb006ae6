"""One logging setup for every entry point (only rank 0 talks at INFO under torchrun), and one redaction of
secrets for everything that prints, logs or saves a command line or an argument dump.

    redact_command(["finetune.py", "--key", "abc123"])   # "finetune.py --key '***'"

Secrets reach a command line in two ways, and both are hidden:

- flags whose value is a secret (:data:`SECRET_FLAGS`): finetune.py's ``--key`` and ``--hub_token`` (also
  after the ``--`` of the launcher, test_case_1.sh or the quickstart's ``--finetune_args``) and the
  ``--wandb_key`` of the launcher and of test_case_1.sh; as ``--flag value``, ``--flag=value``, dashed (``--wandb-key``) or abbreviated as
  argparse accepts (``--wandb_k value``);
- the values of secret environment variables (:func:`secret_env_values`: WANDB_API_KEY, OPENAI_API_KEY,
  HF_TOKEN, a ``--api_key_env`` such as MY_API_KEY, ...), wherever they turn up in the text.
"""
from __future__ import annotations

import logging
import os
import re
import shlex
from collections.abc import Mapping

#: every flag of every entry point whose value is a secret (tests/utils/test_redact.py checks that each
#: argument field named like a secret is here)
SECRET_FLAGS = ("--key", "--wandb_key", "--hub_token")
#: environment variables whose values are secrets, by name (names from --api_key_env included)
SECRET_ENV_NAME = re.compile(r"(API_KEY|_TOKEN|_SECRET|PASSWORD)$", re.I)
MASK = "***"
# Shorter values ("1", "true") would mask ordinary words; real keys are far longer.
_MIN_SECRET_LEN = 6
# A flag and its value in free text: "--flag value" or "--flag=value", the value bare or quoted.
_FLAG_AND_VALUE = re.compile(r"""(?<![\w-])(--[A-Za-z][\w-]*)(=|\s+)('[^']*'|"[^"]*"|[^\s'"]+)""")


def setup_logging(level: int = logging.INFO) -> None:
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=level if rank == 0 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def is_secret_flag(token: str) -> bool:
    """``--key``, ``--wandb_key``, its dashed spelling (``--wandb-key``) or a prefix argparse would expand
    to one of them (``--wandb_k``); ``token`` may carry ``=value``."""
    flag = token.split("=", 1)[0]
    if len(flag) <= 2 or not flag.startswith("--"):
        return False
    flag = "--" + flag[2:].replace("-", "_")  # HfArgumentParser accepts --wandb-key for --wandb_key
    return any(s.startswith(flag) for s in SECRET_FLAGS)


def secret_env_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the secret environment variables (:data:`SECRET_ENV_NAME`), longest first."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if SECRET_ENV_NAME.search(k) and len(v) >= _MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` (a command line, a nested flag string, a log line) with every secret flag's value and every
    secret environment value replaced by ``***``."""
    text = _FLAG_AND_VALUE.sub(lambda m: m.group(1) + m.group(2) + MASK if is_secret_flag(m.group(1))
                               else m.group(0), text)
    for value in secret_env_values(environ):
        text = text.replace(value, MASK)
    return text


def redact_argv(argv: list, environ: Mapping[str, str] | None = None) -> list[str]:
    """``argv`` with the value of each secret flag replaced by ``***`` (``--key V``, ``--key=V``, and inside
    arguments that hold a whole command line, such as ``--finetune_args "--key V"``), and secret
    environment values hidden wherever they appear."""
    shown: list[str] = []
    hide_next = False
    for arg in map(str, argv):
        if hide_next:
            shown.append(MASK)
            hide_next = False
        elif is_secret_flag(arg):
            flag, eq, _ = arg.partition("=")
            shown.append(f"{flag}={MASK}" if eq else arg)
            hide_next = not eq
        else:
            shown.append(redact_text(arg, environ))
    return shown


def redact_command(argv: list, environ: Mapping[str, str] | None = None) -> str:
    """``argv`` as a shell line, secrets hidden (:func:`redact_argv`): what a command is printed or saved as."""
    return shlex.join(redact_argv(argv, environ))


def redact_obj(obj, environ: Mapping[str, str] | None = None):
    """A copy of a JSON-like dump (argument dataclass as a dict, command record) with secrets hidden: the
    value of a field named like a secret flag (``key``, ``wandb_key``), a list of strings as an argv, and
    secrets inside every other string."""
    if isinstance(obj, Mapping):
        return {k: MASK if v and f"--{k}" in SECRET_FLAGS else redact_obj(v, environ) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if all(isinstance(x, str) for x in obj):
            return redact_argv(list(obj), environ)
        return [redact_obj(x, environ) for x in obj]
    return redact_text(obj, environ) if isinstance(obj, str) else obj
