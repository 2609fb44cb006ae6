"""Decide, per training-loss file, whether the loss has converged (a Cauchy criterion).

    python cauchy_test.py --loss_folder losses --threshold 0.001
    bash cauchy_test.sh -f losses -t 0.001            # the same through the shell launcher

The criterion (the Cauchy condition on the end of the sequence, made robust to step noise):

1. Smooth the per-step loss: an exponential moving average (``--smoothing ema``, span ``--window``,
   alpha = 2 / (window + 1)) or a trailing moving average (``--smoothing ma`` over ``--window``
   points). ``--smoothing none`` judges the raw values.
2. Take the tail: the last ``--tail_fraction`` of the points, at least ``--min_tail`` points (or
   exactly the last ``--tail_points`` K points when given).
3. Converged iff *every pair* of smoothed values in the tail differs by less than ``--threshold``,
   i.e. max(tail) - min(tail) < threshold (with ``--relative``: < threshold * |mean(tail)|).

Two consecutive losses differing by < threshold would not do: a noisy curve passes that by chance. A curve shorter than ``--window + --min_tail`` points is reported as too short:
its smoothed tail would still carry the EMA/MA warm-up. Files that cannot be read, are not 1-D or
contain NaN/inf are reported with the reason and count as failures.

Two diagnostic columns (not part of the decision) say why a curve fails: ``drift`` is the change of
a straight line fitted to the raw tail (large: still moving, train longer), ``step noise`` the raw
step-to-step noise (EMA leaves about noise / sqrt(window); large: lengthen --window or accept a larger
--threshold, see docs/acceptance.md).

Writes ``convergence.txt`` (the table), ``convergence.json`` and ``convergence.png`` (raw and
smoothed curves, each curve's tail shaded) into the loss folder unless ``--output_dir`` says
otherwise. Exit status: 0 all converged; 1 some file failed; 2 no folder / no ``.npy`` / bad usage.
"""
from __future__ import annotations

import argparse
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from utils import tables
from utils.io_utils import atomic_write_json, atomic_write_text
from utils.logging_utils import setup_logging

logger = logging.getLogger("cauchy_test")

SMOOTHERS = ("ema", "ma", "none")
# Commands that produce a loss folder; quoted in the error message when the folder is missing.
MAKERS = "bash test_case_1.sh --small (three quick runs) or bash shells/finetune_lora_ds.sh -m MODEL -d DATA"


@dataclass
class CauchyConfig:
    """Parameters of the criterion; docs/acceptance.md explains the defaults."""

    threshold: float = field(default=1e-3, metadata={
        "aliases": ["-t"], "help": "Epsilon: the smoothed tail must satisfy max - min < threshold."})
    smoothing: str = field(default="ema", metadata={
        "choices": list(SMOOTHERS), "help": "ema: exponential moving average; ma: trailing moving average; none: raw."})
    window: int = field(default=20, metadata={"help": "Smoothing window: EMA span (alpha = 2/(window+1)) or MA length."})
    tail_fraction: float = field(default=0.1, metadata={"help": "Judge the last this fraction of the points ..."})
    min_tail: int = field(default=10, metadata={"help": "... but at least this many points."})
    tail_points: int | None = field(default=None, metadata={"help": "Judge exactly the last K points instead of a fraction."})
    relative: bool = field(default=False, metadata={
        "help": "Compare the spread with threshold * |mean of the tail| instead of the absolute threshold."})

    def __post_init__(self) -> None:
        if self.smoothing not in SMOOTHERS:
            raise ValueError(f"smoothing must be one of {SMOOTHERS}, got {self.smoothing!r}")
        if not self.threshold > 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if not 0 < self.tail_fraction <= 1:
            raise ValueError(f"tail_fraction must be in (0, 1], got {self.tail_fraction}")
        if self.min_tail < 2:
            raise ValueError(f"min_tail must be >= 2 (a spread needs two points), got {self.min_tail}")
        if self.tail_points is not None and self.tail_points < 2:
            raise ValueError(f"tail_points must be >= 2, got {self.tail_points}")

    @property
    def warmup(self) -> int:
        """Points the smoother needs before its output stops depending on the first values."""
        return 0 if self.smoothing == "none" else self.window

    def tail_length(self, n: int) -> int:
        """Number of final points judged for a curve of ``n`` points."""
        if self.tail_points is not None:
            return self.tail_points
        return max(self.min_tail, math.ceil(self.tail_fraction * n))

    def min_points(self, n: int) -> int:
        return self.warmup + self.tail_length(n)


@dataclass
class CurveResult:
    file: str
    points: int
    converged: bool
    tail_points: int = 0
    tail_spread: float | None = None
    tail_mean: float | None = None
    limit: float | None = None
    drift: float | None = None  # diagnostics only: change of a straight-line fit over the raw tail
    step_noise: float | None = None  # ... and the raw step-to-step noise (std of differences / sqrt 2)
    reason: str = ""
    # Not serialised: kept for the plot.
    raw: np.ndarray | None = field(default=None, repr=False)
    smoothed: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("raw")
        d.pop("smoothed")
        return d


class LossFileError(ValueError):
    """A loss file is unreadable or not a finite 1-D array; the message names the file."""


def smooth(values: np.ndarray, method: str = "ema", window: int = 20) -> np.ndarray:
    """Smooth a 1-D series; output has the same length as the input.

    ``ema``: exponential moving average with alpha = 2 / (window + 1), started at the first value.
    ``ma``: trailing mean over the last ``window`` points (fewer at the start).
    ``none``: the values unchanged (as float64).
    """
    x = np.asarray(values, dtype=np.float64)
    if method == "none" or window <= 1 or x.size == 0:
        return x.copy()
    if method == "ema":
        alpha = 2.0 / (window + 1.0)
        out = np.empty_like(x)
        acc = x[0]
        for i, v in enumerate(x):
            acc = alpha * v + (1.0 - alpha) * acc
            out[i] = acc
        return out
    if method == "ma":
        csum = np.concatenate([[0.0], np.cumsum(x)])
        idx = np.arange(1, x.size + 1)
        start = np.maximum(idx - window, 0)
        return (csum[idx] - csum[start]) / (idx - start)
    raise ValueError(f"unknown smoothing {method!r}; choose from {SMOOTHERS}")


def load_loss_file(path: Path) -> np.ndarray:
    """Load a ``.npy`` loss curve, raising :class:`LossFileError` if it is not a finite 1-D float array."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise LossFileError(f"{path}: unreadable as a .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive or similar
        raise LossFileError(f"{path}: expected one array, got {type(arr).__name__}")
    if arr.ndim != 1:
        raise LossFileError(f"{path}: expected a 1-D array of per-step losses, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise LossFileError(f"{path}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        kind = "NaN" if np.isnan(arr[bad[0]]) else "inf"
        raise LossFileError(
            f"{path}: {bad.size} non-finite value(s), first {kind} at step index {bad[0]} "
            "(the training diverged or the file is corrupt)"
        )
    return arr


def judge_curve(values: np.ndarray, cfg: CauchyConfig, name: str = "") -> CurveResult:
    """Apply the criterion to one finite 1-D curve."""
    values = np.asarray(values, dtype=np.float64)
    n = int(values.size)
    needed = cfg.min_points(n)
    if n < needed:
        return CurveResult(
            file=name, points=n, converged=False, raw=values,
            reason=f"too short: {n} points, need {needed} ({cfg.warmup} smoothing warm-up + "
            f"{cfg.tail_length(n)} tail); train longer or lower --window/--min_tail",
        )
    smoothed = smooth(values, cfg.smoothing, cfg.window)
    k = cfg.tail_length(n)
    tail = smoothed[-k:]
    spread = float(tail.max() - tail.min())
    mean = float(tail.mean())
    limit = cfg.threshold * abs(mean) if cfg.relative else cfg.threshold
    converged = spread < limit
    # Why a curve fails: still moving (drift) or noise the smoothing did not remove (step noise).
    raw_tail = values[-k:]
    drift = float(np.polyfit(np.arange(k), raw_tail, 1)[0] * (k - 1))
    noise = float(np.std(np.diff(raw_tail)) / math.sqrt(2))
    reason = "" if converged else f"tail spread {spread:.3g} >= {limit:.3g}"
    return CurveResult(
        file=name, points=n, converged=converged, tail_points=k, tail_spread=spread, tail_mean=mean,
        limit=limit, drift=drift, step_noise=noise, reason=reason, raw=values, smoothed=smoothed,
    )


def judge_file(path: Path, cfg: CauchyConfig) -> CurveResult:
    try:
        values = load_loss_file(path)
    except LossFileError as exc:
        return CurveResult(file=path.name, points=0, converged=False, reason=str(exc))
    return judge_curve(values, cfg, name=path.name)


def format_table(results: list[CurveResult]) -> str:
    """A fixed-width table: file, points, tail length, tail spread, limit, verdict, diagnostics, reason."""
    header = ("file", "points", "tail", "tail spread", "limit", "converged", "drift", "step noise", "note")
    rows = [
        (
            r.file,
            str(r.points),
            str(r.tail_points) if r.tail_points else "-",
            f"{r.tail_spread:.3g}" if r.tail_spread is not None else "-",
            f"{r.limit:.3g}" if r.limit is not None else "-",
            "✅" if r.converged else "❌",
            f"{r.drift:+.3g}" if r.drift is not None else "-",
            f"{r.step_noise:.3g}" if r.step_noise is not None else "-",
            r.reason,
        )
        for r in results
    ]
    return tables.format_table(list(header), [list(r) for r in rows])


def plot_curves(results: list[CurveResult], cfg: CauchyConfig, path: Path) -> None:
    """Save the curves (left: raw faint, smoothed solid, judged tail shaded) and their tails (right).

    The right panel draws each smoothed tail minus its own minimum, with the threshold as a dashed
    line: a curve converged exactly when it stays below the line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shaded: set[tuple[int, int]] = set()
    for i, r in enumerate(x for x in results if x.raw is not None and x.raw.size):
        c = colors[i % len(colors)]
        steps = np.arange(1, r.raw.size + 1)
        ax.plot(steps, r.raw, color=c, alpha=0.3, linewidth=0.8)
        mark = "converged" if r.converged else "not converged"
        if r.smoothed is None:  # too short to judge: raw only
            ax.plot([], [], color=c, label=f"{r.file}: {r.reason.split(':')[0]}")
            continue
        ax.plot(steps, r.smoothed, color=c, linewidth=1.6, label=f"{r.file}: {mark}")
        span = (r.raw.size - r.tail_points, r.raw.size)
        if span not in shaded:  # equal-length runs share one band instead of darkening it
            ax.axvspan(span[0] + 0.5, span[1] + 0.5, color="grey", alpha=0.15)
            shaded.add(span)
        tail = r.smoothed[-r.tail_points:]
        zoom.plot(steps[-r.tail_points:], tail - tail.min(), color=c, linewidth=1.6)
        if cfg.relative:
            zoom.axhline(r.limit, color=c, linestyle="--", linewidth=1)
    if not cfg.relative:
        zoom.axhline(cfg.threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {cfg.threshold:g}")
        zoom.legend(fontsize=8)
    what = "raw" if cfg.smoothing == "none" else f"raw (faint), {cfg.smoothing.upper()} window {cfg.window} (solid)"
    ax.set(xlabel="step", ylabel="training loss", title=f"Loss: {what}; grey = judged tail")
    zoom.set(xlabel="step", ylabel="smoothed loss - tail minimum",
             title="Tails: converged iff below the dashed line")
    ax.title.set_fontsize(10)
    zoom.title.set_fontsize(10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


@dataclass
class CauchyArguments(CauchyConfig):
    loss_folder: str = field(default="losses", metadata={
        "aliases": ["-f", "--folder"], "help": "Folder with one <run>.npy per run."})
    output_dir: str | None = field(default=None, metadata={
        "help": "Where convergence.txt/.json/.png go (default: the loss folder)."})
    no_plot: bool = field(default=False, metadata={"help": "Do not write convergence.png."})


def parse_args(argv: list[str] | None = None) -> CauchyArguments:
    """Flags into :class:`CauchyArguments`; ``ValueError`` for values the criterion rejects."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(CauchyArguments, prog="cauchy_test.py", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="Entry points: bash cauchy_test.sh | python cauchy_test.py | ku-cauchy")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def main(argv: list[str] | None = None) -> int:
    """Judge every ``.npy`` in the folder; print and save the table and plot; return the exit status."""
    setup_logging()
    try:
        args = parse_args(argv)
        cfg = CauchyConfig(**{f.name: getattr(args, f.name) for f in fields(CauchyConfig)})
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    folder = Path(args.loss_folder)
    if not folder.is_dir():
        logger.error("Loss folder %s does not exist. Make one with: %s", folder, MAKERS)
        return 2
    files = sorted(folder.glob("*.npy"))
    if not files:
        logger.error("No .npy loss files in %s. Make them with: %s", folder, MAKERS)
        return 2

    results = [judge_file(f, cfg) for f in files]
    table = format_table(results)
    passed = sum(r.converged for r in results)
    verdict = f"{passed}/{len(results)} converged"
    print(table)
    print(verdict)

    out_dir = Path(args.output_dir) if args.output_dir else folder
    atomic_write_text(out_dir / "convergence.txt", table + "\n" + verdict + "\n")
    atomic_write_json(out_dir / "convergence.json", {
        "criterion": asdict(cfg), "all_converged": passed == len(results),
        "results": [r.to_json() for r in results],
    })
    if not args.no_plot:
        plot_curves(results, cfg, out_dir / "convergence.png")
        logger.info("Plot: %s", out_dir / "convergence.png")
    return 0 if passed == len(results) else 1
