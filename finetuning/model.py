"""Load the base model and tokenizer for fine-tuning and wrap the model with LoRA (PEFT)."""
from __future__ import annotations

import logging

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetuning.data import ensure_pad_token
from utils.default_model import resolve_model_path

logger = logging.getLogger(__name__)


def _dtype(training_args) -> torch.dtype:
    # --bf16 (resolved from auto by finetuning/precision.py) loads the frozen base weights in bf16; PEFT then
    # keeps the LoRA weights in fp32 (autocast_adapter_dtype), so the optimizer and the saved adapter are fp32.
    if training_args.bf16:
        return torch.bfloat16
    if training_args.fp16:
        return torch.float16
    return torch.float32


def load_tokenizer(model_args, data_args):
    """The base model's tokenizer, right-padded, with a pad token distinct from EOS."""
    path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=model_args.trust_remote_code,
                                              model_max_length=data_args.model_max_length)
    tokenizer.padding_side = "right"
    if tokenizer.chat_template is None:
        raise ValueError(f"{path}: the tokenizer has no chat template; fine-tune an instruct/chat model "
                         "or add a chat_template.jinja to the folder")
    ensure_pad_token(tokenizer)
    return tokenizer


def load_model(model_args, lora_args, training_args, tokenizer):
    """Base model (+ LoRA when ``use_lora``); prints the trainable-parameter count on rank 0.

    Raises ``ValueError`` for QLoRA without a CUDA GPU and bitsandbytes.
    """
    path = resolve_model_path(model_args.model_name_or_path)
    kwargs = {"dtype": _dtype(training_args), "attn_implementation": model_args.attn_implementation,
              "trust_remote_code": model_args.trust_remote_code}
    if lora_args.q_lora:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            bitsandbytes = None
        if not torch.cuda.is_available() or bitsandbytes is None:
            raise ValueError("--q_lora True needs a CUDA GPU and the bitsandbytes package; use plain LoRA here")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=kwargs["dtype"] if kwargs["dtype"] != torch.float32 else torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False  # the KV cache is useless in training and clashes with checkpointing
    if not lora_args.use_lora:
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if lora_args.q_lora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=training_args.gradient_checkpointing)
    elif training_args.gradient_checkpointing:
        model.enable_input_require_grads()  # frozen embeddings would otherwise cut the gradient path
    targets = lora_args.lora_target_modules
    config = LoraConfig(
        r=lora_args.lora_r, lora_alpha=lora_args.lora_alpha, lora_dropout=lora_args.lora_dropout,
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()],
        modules_to_save=[m.strip() for m in lora_args.modules_to_save.split(",")] if lora_args.modules_to_save else None,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    if training_args.process_index == 0:
        trainable, total = model.get_nb_trainable_parameters()
        logger.info("LoRA r=%d alpha=%d on %s: %d trainable of %d parameters (%.3f%%)", lora_args.lora_r,
                    lora_args.lora_alpha, targets, trainable, total, 100 * trainable / total)
    return model
