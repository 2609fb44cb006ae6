"""Recipes: the measured settings of a whole run, one YAML file that every entry point reads.

A recipe has up to three sections, each the defaults of one command's flags:

    collect:   python -m data_processor     (bash shells/collect_data.sh)
    finetune:  python finetune.py           (bash shells/finetune_lora_ds.sh; replay rows included)
    evaluate:  python evaluate.py           (bash shells/evaluate.sh)

``--recipe FILE`` picks one (default ``configs/recipes/default.yaml``); flags given on the command
line win over the recipe, and the recipe wins over the dataclass defaults. ``--recipe none`` uses the
dataclass defaults alone.
"""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = "configs/recipes/default.yaml"
SECTIONS = ("collect", "finetune", "evaluate")


class RecipeError(ValueError):
    """A recipe file that is missing, not YAML, or names a setting no command has (the message names the file)."""


def repo_path(path: str | Path) -> Path:
    """``path`` as given when it exists from here, else relative to the repository (the shipped
    ``examples/`` and ``configs/`` work from any folder)."""
    p = Path(path)
    if not p.exists() and not p.is_absolute() and (REPO_ROOT / p).exists():
        return REPO_ROOT / p
    return p


def is_none(value) -> bool:
    """Whether a "none"-or-path option (or recipe value) is off: ``none`` in any case, or empty."""
    return str(value).strip().lower() in ("none", "")


def optional_file(value: str, flag: str) -> Path | None:
    """The file a "none"-or-path option names (``repo_path``), ``None`` for ``none`` or empty.
    Raises ``FileNotFoundError`` naming ``flag`` when the path is not a file."""
    if is_none(value):
        return None
    path = repo_path(value)
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {value}: no such file ('none' turns it off)")
    return path


def split_recipe_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    """``(recipe path or None, argv without --recipe)``; ``--recipe none`` gives ``None``, no flag the default."""
    rest, recipe, i = [], DEFAULT_RECIPE, 0
    while i < len(argv):
        a = argv[i]
        if a in ("--recipe", "--config") and i + 1 < len(argv):
            recipe, i = argv[i + 1], i + 2
            continue
        if a.startswith(("--recipe=", "--config=")):
            recipe = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    return (None if is_none(recipe) else recipe), rest


def load_recipe(path: str | Path | None) -> dict[str, dict]:
    """The sections of the recipe at ``path`` (``{}`` for ``None``). Raises :class:`RecipeError`."""
    if path is None:
        return {}
    import yaml

    p = repo_path(path)
    if not p.is_file():
        found = sorted(q.name for q in (REPO_ROOT / "configs" / "recipes").glob("*.yaml"))
        raise RecipeError(f"recipe {path} not found (configs/recipes/ has: {', '.join(found)})")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"{p}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or any(k not in SECTIONS for k in data):
        raise RecipeError(f"{p}: the top level must be sections among {', '.join(SECTIONS)}; got {list(data)}")
    for name, section in data.items():
        if section is not None and not isinstance(section, dict):
            raise RecipeError(f"{p}: section '{name}' must be a mapping of flag: value")
    return {name: dict(section or {}) for name, section in data.items()}


def recipe_section(path: str | Path | None, section: str) -> dict:
    """One section of a recipe (``{}`` when the recipe has none)."""
    return load_recipe(path).get(section, {})


def apply_defaults(parser, values: dict, where: str) -> None:
    """Make ``values`` the defaults of ``parser`` (an argparse/HfArgumentParser); the command line still wins.

    Raises :class:`RecipeError` naming ``where`` for a key that is not one of the parser's flags.
    """
    dests = {a.dest for a in parser._actions}
    unknown = sorted(k for k in values if k not in dests)
    if unknown:
        raise RecipeError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    parser.set_defaults(**values)
