"""GGUF export on the tiny model: llama.cpp's converter (finetuning/gguf.py) writes files that
llama-cpp-python loads, with tokenizer and chat template, whose logits match the HF model; the GGUF LoRA
applied to the base GGUF matches too; the round-trip check fails on the wrong model; stamps skip a
current export; the serve command starts a server that answers."""
from __future__ import annotations

import json
import os

import pytest

from finetuning import export
from finetuning.llama_server import chat_completion

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (requirements-test.txt)")


# -- pure parts ------------------------------------------------------------------------------------
def test_modelfile_spells_out_chatml_and_greedy(smollm2_tokenizer):
    text = export.modelfile_text("model-q8_0.gguf", smollm2_tokenizer.chat_template)
    assert text.startswith("FROM ./model-q8_0.gguf\n")
    assert "<|im_start|>{{ .Role }}" in text and 'PARAMETER stop "<|im_end|>"' in text
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in text
    assert "PARAMETER temperature 0" in text and "PARAMETER repeat_penalty 1.0" in text
    other = export.modelfile_text("m.gguf", "{{ bos_token }}[INST] {{ messages[0]['content'] }} [/INST]")
    assert "TEMPLATE" not in other and other.startswith("FROM ./m.gguf\n")  # Ollama reads the GGUF's template


def test_cli_errors_exit_2(tmp_path, caplog):
    assert export.main(["--adapter", str(tmp_path)]) == 2
    assert "adapter_config.json" in caplog.text
    assert export.main(["--model", str(tmp_path / "nothing"), "--output", str(tmp_path / "o")]) == 2
    assert export.main(["--output", str(tmp_path / "o")]) == 2  # neither --adapter nor --model


# -- the real converter on the tiny model ----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_lora(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter with random (non-zero) B matrices on every projection, as the recipe trains them. Scale 2:
    the merged model differs clearly from the base (rel 1.3, top-1 0.0) and stays numerically tame (scale 16
    on every layer drives even an f32 GGUF past the f16 KV cache's precision: rel 0.023)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    out = tmp_path_factory.mktemp("tiny_lora") / "adapter"
    get_peft_model(model, cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def exported(tiny_lora):
    return export.export_gguf(tiny_lora, gguf_type="q8_0", lora_gguf=True, check=True)


def test_export_round_trip_q8_0_and_gguf_lora(exported, tiny_lora, tiny_model_dir, smollm2_tokenizer):
    from gguf import GGUFReader

    gguf_dir = tiny_lora / "gguf"
    assert exported.gguf == str(gguf_dir / "model-q8_0.gguf") and not exported.reused
    assert {p.name for p in gguf_dir.glob("*.gguf")} == {"model-q8_0.gguf", "base-q8_0.gguf", "adapter-q8_0.gguf"}
    assert not list(gguf_dir.glob(".*partial"))
    fields = GGUFReader(exported.gguf).fields

    def value(key):
        return fields[key].contents()

    assert value("general.architecture") == "llama" and value("llama.block_count") == 2
    assert value("llama.embedding_length") == 64
    assert value("tokenizer.chat_template") == smollm2_tokenizer.chat_template
    assert value("tokenizer.ggml.eos_token_id") == smollm2_tokenizer.convert_tokens_to_ids("<|im_end|>")
    # merged GGUF and base GGUF + GGUF LoRA both match the merged HF model
    for check in (exported.check, exported.lora_check):
        assert check.passed, check.summary()
        assert check.tokens_match and check.chat_template_match and check.positions > 40
    assert "FROM ./model-q8_0.gguf" in (gguf_dir / "Modelfile").read_text()
    # The check can fail: the updated GGUF is not the base model, and the base GGUF alone is the base.
    wrong = export.check_gguf(exported.gguf, tiny_model_dir, "q8_0")
    assert not wrong.passed and wrong.max_rel_diff > export.TOLERANCES["q8_0"]["max_rel_diff"], wrong.summary()
    assert export.check_gguf(exported.base_gguf, tiny_model_dir, "q8_0").passed


def test_cli_check_reuses_the_current_export_and_writes_the_figures(exported, tiny_lora, capsys):
    gguf = tiny_lora / "gguf" / "model-q8_0.gguf"
    mtime = gguf.stat().st_mtime_ns
    assert export.main(["--adapter", str(tiny_lora), "--check"]) == 0
    assert gguf.stat().st_mtime_ns == mtime  # the stamp says it is current: not converted again
    out = capsys.readouterr().out
    assert str(gguf) in out and "PASS" in out
    (figures,) = json.loads((tiny_lora / "gguf" / "model-q8_0.check.json").read_text())
    assert figures["passed"] and figures["positions"] == exported.check.positions
    assert figures["max_abs_diff"] == pytest.approx(exported.check.max_abs_diff, rel=1e-3)


@pytest.mark.slow
def test_a_retrained_adapter_is_exported_again(exported, tiny_lora):
    gguf = tiny_lora / "gguf" / "model-q8_0.gguf"
    mtime = gguf.stat().st_mtime_ns
    weights = tiny_lora / "adapter_model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # "retrained"
    redone = export.export_gguf(tiny_lora, gguf_type="q8_0")
    assert not redone.reused and gguf.stat().st_mtime_ns != mtime
    assert export.export_gguf(tiny_lora, gguf_type="q8_0").reused


@pytest.mark.slow
def test_merge_lora_gguf_f16_round_trip(tiny_lora, tmp_path):
    from finetuning import merge_lora

    out = tmp_path / "merged"
    assert merge_lora.main(["--adapter", str(tiny_lora), "--output", str(out), "--gguf", "f16"]) == 0
    check = export.check_gguf(out / "model-f16.gguf", out, "f16")
    assert check.passed, check.summary()
    assert check.max_rel_diff < export.TOLERANCES["q8_0"]["max_rel_diff"] / 10  # f16 is far closer than q8_0


def test_serve_command_starts_a_server_that_answers(exported, tiny_lora, smollm2_tokenizer, capsys):
    from finetuning import serve
    from utils.processes import free_port

    port = free_port()
    assert serve.main(["--adapter", str(tiny_lora), "--port", str(port), "--dry_run", "True"]) == 0
    printed = capsys.readouterr().out.splitlines()
    cmd = printed[0].split()
    assert cmd[cmd.index("--model") + 1] == exported.gguf and cmd[cmd.index("--port") + 1] == str(port)
    assert cmd[cmd.index("--last_n_tokens_size") + 1] == "0" and "--chat_format" not in cmd
    assert f"--served updated=http://127.0.0.1:{port}/v1,updated" in printed[-1]

    # Both routes answer a chat request (the merged GGUF, and the base GGUF with the GGUF LoRA), with the
    # prompt rendered by the model's own chat template: as many prompt tokens as the HF tokenizer makes.
    text = smollm2_tokenizer.apply_chat_template([{"role": "user", "content": "Hello?"}], tokenize=False,
                                                 add_generation_prompt=True)
    n_prompt = len(smollm2_tokenizer(text, add_special_tokens=False)["input_ids"])
    for gguf, lora in ((exported.gguf, None), (exported.base_gguf, exported.lora_gguf)):
        with serve.UpdatedModelServer(gguf, tiny_lora / "server.log", lora=lora, alias="updated") as server:
            reply = chat_completion(server.base_url, "Hello?", model="updated", max_tokens=4, timeout=60)
            assert reply["usage"]["completion_tokens"] > 0
            assert reply["usage"]["prompt_tokens"] == n_prompt

