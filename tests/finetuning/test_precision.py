"""--bf16 auto|True|False: the auto decision from CPU flags, and tiny-model runs forced to each dtype."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import TrainerCallback

import finetune
from finetuning.args import parse_args
from finetuning.precision import choose_bf16, parse_bf16, resolve_bf16
from tests.finetuning.test_train import base_args, make_data

# /proc/cpuinfo excerpts (one processor each): the flags that matter, among others that must not.
EPYC = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
AMX_ONLY = "processor\t: 0\nflags\t\t: avx2 avx512f amx_bf16 amx_tile\n"
CASCADE_LAKE = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: avx2 avx512f avx512_vnni\n"  # int8 only
AVX2_ONLY = "processor\t: 0\nflags\t\t: sse4_2 avx avx2 fma f16c\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def cpu(cpuinfo, onednn=True, requested="auto", deepspeed=False):
    return choose_bf16(requested, cuda_available=False, cuda_bf16=False, cpuinfo=cpuinfo, onednn_bf16=onednn,
                       deepspeed=deepspeed)


def test_auto_on_a_cpu_is_bf16_only_with_a_native_bf16_instruction_that_onednn_supports():
    assert cpu(EPYC) == (True, "auto: the CPU has avx512_bf16 and torch's oneDNN supports bf16")
    assert cpu(SAPPHIRE_RAPIDS)[0] and "amx_bf16, avx512_bf16" in cpu(SAPPHIRE_RAPIDS)[1]
    assert cpu(AMX_ONLY)[0]
    for emulated in (CASCADE_LAKE, AVX2_ONLY, ARM, ""):  # ARM: never measured for training
        bf16, why = cpu(emulated)
        assert not bf16 and "no native bf16 instruction" in why
    bf16, why = cpu(EPYC, onednn=False)
    assert not bf16 and "oneDNN reports no bf16 support" in why
    bf16, why = cpu(EPYC, deepspeed=True)
    assert not bf16 and "DeepSpeed" in why


def test_auto_on_cuda_follows_the_device_and_ignores_the_cpu():
    assert choose_bf16("auto", cuda_available=True, cuda_bf16=True, cpuinfo=AVX2_ONLY, onednn_bf16=False)[0]
    assert not choose_bf16("auto", cuda_available=True, cuda_bf16=False, cpuinfo=EPYC, onednn_bf16=True)[0]
    assert choose_bf16("auto", cuda_available=True, cuda_bf16=True, cpuinfo="", onednn_bf16=False, deepspeed=True)[0]


@pytest.mark.parametrize("requested, expected", [("True", True), ("false", False), (True, True), (False, False),
                                                 ("bf16", True), ("fp32", False), ("1", True), ("no", False)])
def test_a_forced_value_wins_over_the_host(requested, expected):
    assert cpu(AVX2_ONLY, onednn=False, requested=requested) == (expected, f"--bf16 {expected} (forced)")
    assert cpu(EPYC, requested=requested)[0] is expected


def test_a_bad_value_names_the_flag():
    assert parse_bf16("AUTO") is None
    with pytest.raises(ValueError, match=r"--bf16 'maybe': expected auto, True or False"):
        parse_bf16("maybe")


def test_flag_and_recipe_parse_to_the_plain_bool_transformers_reads(tmp_path):
    def bf16(*argv):
        return parse_args(["--output_dir", str(tmp_path), "--use_wandb", "False", *argv])[3]

    assert bf16("--bf16", "False").bf16 is False and "forced" in bf16("--bf16", "False").bf16_reason
    forced = bf16("--bf16")  # the bare flag, as before: True
    assert forced.bf16 is True and forced.mixed_precision == "bf16"
    assert forced.use_cpu or torch.cuda.is_available()  # transformers refuses CPU bf16 without use_cpu
    recipe = tmp_path / "r.yaml"
    recipe.write_text("finetune:\n  bf16: false\n")
    assert bf16("--recipe", str(recipe)).bf16 is False
    assert bf16("--recipe", str(recipe), "--bf16", "True").bf16 is True  # the command line wins
    auto = bf16("--recipe", "none")
    assert (auto.bf16, auto.bf16_reason) == resolve_bf16("auto")
    with pytest.raises(ValueError, match="--bf16 'half'"):
        bf16("--bf16", "half")


def train(tmp_path, tiny_model_dir, flag):
    from safetensors.torch import load_file

    data, out = make_data(tmp_path / "qa.jsonl"), tmp_path / "out"
    seen = {}

    class Dtypes(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            for name, p in model.named_parameters():
                seen.setdefault("lora" if "lora_" in name else "base", set()).add(p.dtype)

    assert finetune.main(base_args(tiny_model_dir, data, out, tmp_path / "losses", "--max_steps", "2",
                                   "--bf16", flag), extra_callbacks=[Dtypes()]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    adapter = load_file(out / "adapter_model.safetensors")
    return seen, summary, adapter


def test_forced_fp32_trains_every_parameter_in_fp32(tmp_path, tiny_model_dir):
    seen, summary, adapter = train(tmp_path, tiny_model_dir, "False")
    assert seen == {"base": {torch.float32}, "lora": {torch.float32}}
    assert summary["bf16"] is False and summary["precision_reason"] == "--bf16 False (forced)"
    assert {v.dtype for v in adapter.values()} == {torch.float32}


_HOST_BF16, _HOST_WHY = resolve_bf16("auto")


@pytest.mark.skipif(not _HOST_BF16, reason=f"this host would emulate bf16 training ({_HOST_WHY})")
def test_forced_bf16_keeps_lora_weights_and_the_saved_adapter_fp32(tmp_path, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    seen, summary, adapter = train(tmp_path, tiny_model_dir, "True")
    assert seen == {"base": {torch.bfloat16}, "lora": {torch.float32}}
    assert summary["bf16"] is True and torch.isfinite(torch.tensor(summary["train_loss_last"]))
    assert {v.dtype for v in adapter.values()} == {torch.float32}
    # The adapter loads onto an fp32 base, as evaluation loads it, and merges into the same model.
    from finetuning.merge_lora import main as merge_main

    ids = torch.tensor([[1, 2, 3]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        tuned = PeftModel.from_pretrained(base, tmp_path / "out")(input_ids=ids).logits
    assert torch.isfinite(tuned).all()
    assert merge_main(["--adapter", str(tmp_path / "out"), "--output", str(tmp_path / "merged")]) == 0
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32)(input_ids=ids).logits
    torch.testing.assert_close(merged, tuned, atol=1e-4, rtol=1e-4)


def test_launcher_passes_bf16_only_when_given_so_the_recipe_decides_otherwise(tmp_path):
    from finetuning.launch import build

    data = make_data(tmp_path / "qa.jsonl")

    def finetune_argv(*flags):
        return build(["-d", str(data), *flags], environ={"GPUS_PER_NODE": "0"})[1]

    assert "--bf16" not in finetune_argv()
    assert finetune_argv("--bf16", "False")[-2:] == ["--bf16", "False"]
    assert finetune_argv("--bf16")[-2:] == ["--bf16", "True"]
    with pytest.raises(SystemExit):
        finetune_argv("--bf16", "half")
