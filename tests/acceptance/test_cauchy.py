"""cauchy_test.py: the convergence criterion on synthetic curves, bad files, the CLI and the shell flags."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from acceptance import cauchy as ct

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)
STEPS = np.arange(300, dtype=float)


def exp_decay(noise: float = 3e-4) -> np.ndarray:
    """A converged LoRA-like curve: fast drop, then flat, with small step noise."""
    return 0.2 + 2.0 * np.exp(-STEPS / 30) + np.random.default_rng(1).normal(0, noise, STEPS.size)


def noisy_plateau() -> np.ndarray:
    """Flat on average, but batch-to-batch noise far above the threshold survives smoothing."""
    return 0.5 + np.random.default_rng(2).normal(0, 0.05, STEPS.size)


def oscillating() -> np.ndarray:
    """A slow oscillation: consecutive points are close (a consecutive-difference test passes), the tail is not flat."""
    return 0.3 + 0.01 * np.sin(2 * np.pi * STEPS / 60)


def save(folder: Path, name: str, arr) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    np.save(path, np.asarray(arr))
    return path


# ---------------------------------------------------------------- smoothing

def test_ema_matches_formula():
    x = np.array([1.0, 0.0, 0.0, 2.0])
    out = ct.smooth(x, "ema", window=3)  # alpha = 0.5
    assert np.allclose(out, [1.0, 0.5, 0.25, 1.125])


def test_moving_average_is_trailing_mean():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert np.allclose(ct.smooth(x, "ma", window=2), [1.0, 1.5, 2.5, 3.5, 4.5])
    assert np.allclose(ct.smooth(x, "ma", window=3), [1.0, 1.5, 2.0, 3.0, 4.0])


def test_no_smoothing_returns_values():
    x = np.array([3.0, 1.0, 2.0])
    assert np.array_equal(ct.smooth(x, "none", window=10), x)


def test_unknown_smoothing_rejected():
    with pytest.raises(ValueError, match="smoothing"):
        ct.CauchyConfig(smoothing="median")


# ---------------------------------------------------------------- criterion on synthetic curves

def test_exponential_decay_converges():
    r = ct.judge_curve(exp_decay(), ct.CauchyConfig())
    assert r.converged, r.reason
    assert r.tail_points == 30 and r.tail_spread < 1e-3


def test_noisy_plateau_fails():
    r = ct.judge_curve(noisy_plateau(), ct.CauchyConfig())
    assert not r.converged and r.tail_spread > 1e-3
    assert "tail spread" in r.reason


def test_oscillation_fails_although_consecutive_difference_test_passes():
    y = oscillating()
    # The naive test "some two consecutive losses differ by < 0.001" passes here, yet the tail is not flat.
    assert np.any(np.abs(np.diff(y)) < 1e-3)
    for smoothing in ("ema", "ma", "none"):
        assert not ct.judge_curve(y, ct.CauchyConfig(smoothing=smoothing)).converged


def test_still_decreasing_curve_fails():
    y = 2.0 - 0.002 * STEPS  # smooth, no noise, but still going down 0.002 per step
    assert not ct.judge_curve(y, ct.CauchyConfig()).converged


def test_diagnostics_separate_drift_from_noise():
    moving = ct.judge_curve(2.0 - 0.002 * STEPS, ct.CauchyConfig())
    assert moving.drift == pytest.approx(-0.002 * 29) and moving.step_noise == pytest.approx(0, abs=1e-9)
    noisy = ct.judge_curve(0.5 + np.random.default_rng(3).normal(0, 0.05, 3000), ct.CauchyConfig(tail_points=1000))
    assert noisy.step_noise == pytest.approx(0.05, rel=0.1) and abs(noisy.drift) < 0.02


def test_ema_divides_noise_std_by_sqrt_window():
    # The rule of thumb the README (acceptance tests) uses to pick --window and --threshold.
    noise = np.random.default_rng(4).normal(0, 1.0, 200_000)
    for w in (10, 20, 50):
        assert np.std(ct.smooth(noise, "ema", w)[1000:]) == pytest.approx(1 / np.sqrt(w), rel=0.05)


def test_too_short_curve_fails_with_reason():
    r = ct.judge_curve(np.full(25, 0.1), ct.CauchyConfig())  # needs 20 warm-up + 10 tail
    assert not r.converged and "too short: 25 points, need 30" in r.reason
    # Without smoothing there is no warm-up, so the same flat curve is long enough and converged.
    assert ct.judge_curve(np.full(25, 0.1), ct.CauchyConfig(smoothing="none")).converged


def test_threshold_parameter_decides():
    y = noisy_plateau()
    spread = ct.judge_curve(y, ct.CauchyConfig()).tail_spread
    assert ct.judge_curve(y, ct.CauchyConfig(threshold=spread * 1.01)).converged
    assert not ct.judge_curve(y, ct.CauchyConfig(threshold=spread * 0.99)).converged


def test_tail_fraction_min_tail_and_tail_points():
    cfg = ct.CauchyConfig(tail_fraction=0.2, min_tail=10)
    assert cfg.tail_length(300) == 60 and cfg.tail_length(20) == 10
    assert ct.CauchyConfig(tail_points=7).tail_length(300) == 7
    # A step 50 points before the end: inside a 60-point tail (fails), outside a 40-point one (passes).
    y = np.concatenate([np.full(250, 1.0), np.full(50, 0.5)])
    assert not ct.judge_curve(y, ct.CauchyConfig(smoothing="none", tail_points=60)).converged
    assert ct.judge_curve(y, ct.CauchyConfig(smoothing="none", tail_points=40)).converged
    assert not ct.judge_curve(y, ct.CauchyConfig(smoothing="none", tail_fraction=0.2)).converged


def test_window_parameter_changes_verdict():
    # Alternating +-0.01 noise: a 2-point MA cancels it exactly, 1 point (no smoothing) does not.
    y = 0.4 + 0.01 * (-1.0) ** STEPS
    assert ct.judge_curve(y, ct.CauchyConfig(smoothing="ma", window=2)).converged
    assert not ct.judge_curve(y, ct.CauchyConfig(smoothing="ma", window=1)).converged


def test_relative_threshold_scales_with_loss_level():
    y = 5.0 + 0.001 * np.sin(STEPS)  # spread ~0.002 on a level of 5: 0.04 %
    assert not ct.judge_curve(y, ct.CauchyConfig(smoothing="none")).converged
    r = ct.judge_curve(y, ct.CauchyConfig(smoothing="none", relative=True))
    assert r.converged and r.limit == pytest.approx(5e-3, rel=1e-3)


# ---------------------------------------------------------------- bad files

def test_nan_and_inf_rejected(tmp_path):
    y = exp_decay()
    y[100] = np.nan
    with pytest.raises(ct.LossFileError, match=r"NaN at step index 100"):
        ct.load_loss_file(save(tmp_path, "nan.npy", y))
    y[100], y[7] = 0.3, np.inf
    r = ct.judge_file(save(tmp_path, "inf.npy", y), ct.CauchyConfig())
    assert not r.converged and "inf at step index 7" in r.reason and "inf.npy" in r.reason


def test_two_dimensional_rejected(tmp_path):
    r = ct.judge_file(save(tmp_path, "2d.npy", np.zeros((10, 3))), ct.CauchyConfig())
    assert not r.converged and "1-D" in r.reason and "(10, 3)" in r.reason


def test_unreadable_and_pickled_rejected(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    assert "unreadable" in ct.judge_file(tmp_path / "junk.npy", ct.CauchyConfig()).reason
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "unreadable" in ct.judge_file(tmp_path / "obj.npy", ct.CauchyConfig()).reason
    np.save(tmp_path / "str.npy", np.array(["a", "b"]))
    assert "real numbers" in ct.judge_file(tmp_path / "str.npy", ct.CauchyConfig()).reason


# ---------------------------------------------------------------- CLI

def test_main_table_files_and_exit_code(tmp_path, capsys):
    folder = tmp_path / "losses"
    save(folder, "good.npy", exp_decay())
    assert ct.main(["--loss_folder", str(folder)]) == 0
    save(folder, "noisy.npy", noisy_plateau())
    save(folder, "short.npy", [1.0, 0.9])
    (folder / "notes.txt").write_text("ignored: not .npy")
    assert ct.main(["--loss_folder", str(folder)]) == 1
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0].endswith(".npy")}
    assert "✅" in lines["good.npy"] and "❌" in lines["noisy.npy"] and "too short" in lines["short.npy"]
    assert "1/3 converged" in out
    report = json.loads((folder / "convergence.json").read_text())
    assert report["all_converged"] is False and report["criterion"]["threshold"] == 1e-3
    assert {r["file"]: r["converged"] for r in report["results"]} == {"good.npy": True, "noisy.npy": False, "short.npy": False}
    assert (folder / "convergence.txt").read_text().startswith("file")
    png = (folder / "convergence.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_main_output_dir_and_no_plot(tmp_path):
    folder, out = tmp_path / "losses", tmp_path / "report"
    save(folder, "good.npy", exp_decay())
    assert ct.main(["--loss_folder", str(folder), "--output_dir", str(out), "--no_plot"]) == 0
    assert (out / "convergence.json").is_file() and not (out / "convergence.png").exists()
    assert not (folder / "convergence.json").exists()


def test_empty_and_missing_folder(tmp_path, caplog):
    (tmp_path / "empty").mkdir()
    assert ct.main(["--loss_folder", str(tmp_path / "empty")]) == 2
    assert "No .npy loss files" in caplog.text
    assert ct.main(["--loss_folder", str(tmp_path / "nope")]) == 2
    assert "does not exist" in caplog.text and "test_case_1.sh --small" in caplog.text


def test_invalid_parameter_is_usage_error(tmp_path, caplog):
    save(tmp_path, "good.npy", exp_decay())
    assert ct.main(["--loss_folder", str(tmp_path), "--threshold", "0"]) == 2
    assert "threshold must be > 0" in caplog.text


# ---------------------------------------------------------------- flags and the shell launcher

ECHO_SCRIPT = "import json, sys; print('ARGV=' + json.dumps(sys.argv[1:]))\n"


def run_shell(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "cauchy_test.sh"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, KU_SKIP_MODEL="1"))


def shell_argv(proc: subprocess.CompletedProcess) -> list[str]:
    line = next(line for line in proc.stdout.splitlines() if line.startswith("ARGV="))
    return json.loads(line[len("ARGV="):])


@pytest.mark.parametrize("flags", [
    ("-f", "F", "-t", "0.5"),
    ("--folder", "F", "--threshold", "0.5"),
    ("--folder=F", "--threshold=0.5"),
    ("--loss_folder", "F", "-t", "0.5"),
])
def test_short_and_long_flags_mean_the_same(flags):
    args = ct.parse_args([*flags, "--window", "5"])
    assert (args.loss_folder, args.threshold, args.window) == ("F", 0.5, 5)


def test_defaults():
    args = ct.parse_args([])
    assert (args.loss_folder, args.threshold, args.smoothing) == ("losses", 0.001, "ema")


def test_shell_runs_another_script_on_the_same_flags(tmp_path):
    script = tmp_path / "echo.py"
    script.write_text(ECHO_SCRIPT)
    proc = run_shell("-s", str(script), "-f", "F", "-t", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert shell_argv(proc) == ["-f", "F", "-t", "0.5"]
    proc = run_shell("--script", str(script))
    assert shell_argv(proc) == []


def test_shell_missing_value_and_missing_script(tmp_path):
    proc = run_shell("-t")
    assert proc.returncode == 2 and "-t" in proc.stderr and "expected one argument" in proc.stderr
    proc = run_shell("-s", str(tmp_path / "missing.py"))
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_shell_runs_real_script(tmp_path):
    save(tmp_path, "run_a.npy", exp_decay())
    save(tmp_path, "run_b.npy", noisy_plateau())
    proc = run_shell("-f", str(tmp_path), "-t", "0.001", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "run_a.npy" in proc.stdout and "1/2 converged" in proc.stdout
    assert (tmp_path / "convergence.png").is_file()
    proc = run_shell("--folder", str(tmp_path), "--threshold", "1.0", "--no_plot")
    assert proc.returncode == 0 and "2/2 converged" in proc.stdout


def test_help_explains_criterion():
    proc = subprocess.run([sys.executable, str(ROOT / "cauchy_test.py"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "max(tail) - min(tail) < threshold" in proc.stdout and "--tail_fraction" in proc.stdout
