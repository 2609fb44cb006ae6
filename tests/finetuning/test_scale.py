"""finetuning/scale.py: the scaled adapter is the base plus s times the update, for every consumer."""
import json

import pytest

from finetuning import scale


@pytest.fixture()
def lora(tiny_model_dir, tmp_path):
    """A LoRA adapter with random non-zero B matrices, beside a checkpoint folder as finetune.py leaves one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    out = tmp_path / "adapter"
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                     init_lora_weights=False)).save_pretrained(out)
    (out / "checkpoint-10").mkdir()
    (out / "checkpoint-10" / "optimizer.pt").write_bytes(b"x")
    return out


def _merged_weights(base_dir, adapter):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    return {k: v.clone() for k, v in PeftModel.from_pretrained(model, adapter).merge_and_unload().state_dict().items()}


def test_scaled_adapter_is_the_base_plus_scale_times_the_update(lora, tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    full = _merged_weights(tiny_model_dir, lora)
    out = scale.scale_adapter(lora, 0.3, tmp_path / "s0.3")
    scaled = _merged_weights(tiny_model_dir, out)
    changed = [k for k in base if not torch.equal(base[k], full[k])]
    assert changed  # the fixture's adapter changes the model
    for k in changed:
        torch.testing.assert_close(scaled[k], base[k] + 0.3 * (full[k] - base[k]), rtol=1e-4, atol=1e-6)
    assert scale.adapter_scale(out) == pytest.approx(0.3) and scale.adapter_scale(lora) == 1.0
    # the copy leaves the trainer's checkpoints behind; the source is untouched
    assert not (out / "checkpoint-10").exists() and (lora / "checkpoint-10" / "optimizer.pt").is_file()
    assert json.loads((out / "adapter_config.json").read_text()) == json.loads((lora / "adapter_config.json").read_text())


def test_scaling_in_place_keeps_the_folder_and_multiplies_the_scales(lora):
    from safetensors.torch import load_file

    before = load_file(str(lora / scale.WEIGHTS))
    scale.scale_adapter(lora, 0.5)
    scale.scale_adapter(lora, 0.5)
    after = load_file(str(lora / scale.WEIGHTS))
    assert scale.adapter_scale(lora) == pytest.approx(0.25)
    assert (lora / "checkpoint-10" / "optimizer.pt").is_file()
    for k, v in before.items():
        expected = v * 0.25 if ".lora_B." in k else v
        assert after[k].equal(expected), k


def test_scale_zero_is_the_base_model(lora, tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    scaled = _merged_weights(tiny_model_dir, scale.scale_adapter(lora, 0, tmp_path / "s0"))
    assert all(torch.equal(base[k], scaled[k]) for k in base)


def test_what_cannot_be_scaled_is_refused_with_the_file(lora, tmp_path):
    with pytest.raises(ValueError, match="must be >= 0"):
        scale.scale_adapter(lora, -1, tmp_path / "neg")
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        scale.scale_adapter(tmp_path / "nothing", 0.5, tmp_path / "x")
    config = json.loads((lora / "adapter_config.json").read_text())
    (lora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(ValueError, match="adapter_config.json: only plain LoRA"):
        scale.scale_adapter(lora, 0.5, tmp_path / "dora")
    assert scale.main(["--adapter", str(tmp_path / "nothing"), "--scale", "0.5"]) == 2
