"""Export an updated model to GGUF, the file llama.cpp reads (llama-server, Ollama, LM Studio).

    python -m finetuning.export --adapter runs/quickstart-X/adapter            # -> <adapter>/gguf/model-q8_0.gguf
    python -m finetuning.export --adapter ADAPTER --gguf_type f16 --check      # + logits compared with the HF model
    python -m finetuning.export --adapter ADAPTER --lora_gguf                  # + base-q8_0.gguf, adapter-q8_0.gguf
    python -m finetuning.export --model default --output out/base-gguf         # a plain model (e.g. the base)

The adapter is merged into its base (float32 unless --merge_dtype; finetuning/merge_lora.py) and the
merged folder is converted by llama.cpp's own ``convert_hf_to_gguf.py``: architecture metadata, tokenizer
and chat template are written by the converter that llama.cpp maintains, not by us. ``--lora_gguf`` also
writes the adapter as a GGUF LoRA (``convert_lora_to_gguf.py``) and the base as a GGUF, for
``llama-server -m base --lora adapter``. ``--check`` loads the GGUF with llama-cpp-python and compares its
logits on a few chat prompts with the HF model's (fp32); see :data:`TOLERANCES`.

The converter comes from the pinned llama-cpp-python sdist and is cached once (finetuning/gguf.py has
where from, the cache folder and the offline switch).

An export is skipped when the GGUF's stamp (utils/io_utils.py) says it was made from the same adapter
weights, base weights, type and converter version; ``--force`` redoes it. Files are written under a
temporary name and renamed, so an interrupted export never leaves a GGUF that looks finished.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from finetuning.gguf import GGUF_TYPES, ExportError, convert_lora, convert_model, gguf_name, llama_cpp_version
from finetuning.merge_lora import merge_lora
from utils.io_utils import atomic_write_text, is_current, mark_current, weights_stamp
from utils.logging_utils import setup_logging

logger = logging.getLogger(__name__)

#: Round-trip tolerances, from measurement (docs/serving.md has the figures). ``max_rel_diff`` is the largest
#: |logit(GGUF) - logit(HF fp32)| over every position and vocabulary entry, divided by the largest |logit|
#: of the HF model, so one bound fits a random tiny model (logits < 1) and a trained one (logits ~40);
#: ``min_top1`` is the share of positions whose most likely next token is the same. f16 rounds each
#: weight to 11 significant bits; q8_0 stores 32-weight blocks as int8 with one f16 scale (and llama.cpp
#: quantises the activations to 8 bits for the product), tens of times the error. llama.cpp keeps its KV
#: cache in f16 whatever the weights, so f32 is no closer than f16. Worst cases measured (rel / top-1;
#: SmolLM2-135M base and two short LoRAs of it, the tiny test model with a random LoRA; 4 prompts, 156
#: positions; docs/serving.md has the table): f32 0.0013 / 1.0, f16 0.0041 / 1.0, q8_0 0.106 / 0.936
#: merged and 0.117 / 0.936 as base + GGUF LoRA (both quantised); the tiny model's top-1 goes down to 0.917
#: (its random logits are full of near-ties). The bounds leave 1.7-2.5x room and still fail the wrong
#: model (the base in place of the update: rel 1.3, top-1 0), a wrong tokenizer or chat template
#: (checked separately) or a dropped tensor.
TOLERANCES = {
    "f32": {"max_rel_diff": 0.01, "min_top1": 0.97},
    "f16": {"max_rel_diff": 0.01, "min_top1": 0.97},
    "q8_0": {"max_rel_diff": 0.2, "min_top1": 0.8},
}
CHECK_PROMPTS = (
    "What is the capital of France?",
    "Who wrote the play Hamlet, and when?",
    "Tell me about the International Drennick Federation.",
    "Explain in one sentence why the sky is blue.",
)


# -- the round-trip check --------------------------------------------------------------------------
@dataclass
class CheckResult:
    gguf: str
    gguf_type: str
    prompts: int
    positions: int
    max_abs_diff: float  # largest |logit difference|
    max_abs_logit: float  # largest |logit| of the HF model (the scale of the above)
    max_rel_diff: float
    top1_agreement: float  # share of positions with the same arg-max token
    tokens_match: bool  # llama.cpp tokenises the rendered prompts into the HF token ids
    chat_template_match: bool  # the GGUF carries the HF tokenizer's chat template
    tolerance: dict = field(default_factory=dict)
    passed: bool = False

    def summary(self) -> str:
        name = " + ".join(Path(p).name for p in self.gguf.split(" + "))
        return (f"{name}: max |dlogit| {self.max_abs_diff:.4f} of max |logit| {self.max_abs_logit:.2f} "
                f"(rel {self.max_rel_diff:.5f}, tolerance {self.tolerance.get('max_rel_diff')}); top-1 agreement "
                f"{self.top1_agreement:.3f} (>= {self.tolerance.get('min_top1')}) over {self.positions} positions; "
                f"tokens {'match' if self.tokens_match else 'DIFFER'}; chat template "
                f"{'matches' if self.chat_template_match else 'DIFFERS'} -> {'PASS' if self.passed else 'FAIL'}")


def check_gguf(gguf: str | Path, hf_model: str | Path, gguf_type: str, prompts=CHECK_PROMPTS, *,
               lora: str | Path | None = None, n_threads: int | None = None) -> CheckResult:
    """Compare ``gguf`` (llama-cpp-python; with ``lora``, a GGUF LoRA applied at load time) with the HF
    model folder ``hf_model`` (fp32) on ``prompts``.

    Each prompt is rendered with the HF tokenizer's chat template (as the evaluation asks questions);
    both models see the same token ids and every position's logits are compared.
    """
    import numpy as np
    import torch
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hf_model)
    model = AutoModelForCausalLM.from_pretrained(hf_model, dtype=torch.float32).eval()
    llm = Llama(str(gguf), n_ctx=512, logits_all=True, verbose=False, n_threads=n_threads,
                lora_path=str(lora) if lora else None)
    try:
        max_diff = max_logit = 0.0
        agree = positions = 0
        tokens_match = True
        for prompt in prompts:
            text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                           add_generation_prompt=True)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            tokens_match &= llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) == ids
            llm.reset()
            llm.eval(ids)
            got = np.asarray(llm.scores[: len(ids)], dtype=np.float32)
            with torch.no_grad():
                ref = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
            max_diff = max(max_diff, float(np.abs(got - ref).max()))
            max_logit = max(max_logit, float(np.abs(ref).max()))
            agree += int((got.argmax(-1) == ref.argmax(-1)).sum())
            positions += len(ids)
        template = llm.metadata.get("tokenizer.chat_template")
    finally:
        llm.close()
    tol = TOLERANCES[gguf_type]
    res = CheckResult(f"{gguf} + {lora}" if lora else str(gguf), gguf_type, len(prompts), positions, max_diff,
                      max_logit,
                      max_diff / max(max_logit, 1e-12), agree / max(positions, 1), tokens_match,
                      template is not None and template == tok.chat_template, dict(tol))
    res.passed = (res.max_rel_diff <= tol["max_rel_diff"] and res.top1_agreement >= tol["min_top1"]
                  and res.tokens_match and res.chat_template_match)
    return res


# -- Ollama ----------------------------------------------------------------------------------------
_CHATML_TEMPLATE = ('{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n'
                    '{{ end }}<|im_start|>assistant\n')


def modelfile_text(gguf_name: str, chat_template: str | None) -> str:
    """An Ollama Modelfile for ``./gguf_name``: the ChatML template (and the default system message the
    HF template adds when there is none, e.g. SmolLM2's) spelled out when the model is a ChatML one;
    otherwise Ollama reads the template from the GGUF's metadata."""
    lines = [f"FROM ./{gguf_name}"]
    if chat_template and "<|im_start|>" in chat_template:
        lines.append(f'TEMPLATE """{_CHATML_TEMPLATE}"""')
        m = re.search(r"<\|im_start\|>system\n([^<{}']+)<\|im_end\|>", chat_template)
        if m:
            lines.append(f'SYSTEM """{m.group(1).strip()}"""')
        lines.append('PARAMETER stop "<|im_end|>"')
    # Ollama's defaults sample (0.8) with a repeat penalty (1.1); the evaluation measured plain greedy.
    lines += ["PARAMETER temperature 0", "PARAMETER repeat_penalty 1.0"]
    return "\n".join(lines) + "\n"


# -- the export ------------------------------------------------------------------------------------
@dataclass
class ExportResult:
    gguf: str
    gguf_type: str
    base_gguf: str | None = None
    lora_gguf: str | None = None
    modelfile: str | None = None
    reused: bool = False
    check: CheckResult | None = None
    lora_check: CheckResult | None = None  # base GGUF + GGUF LoRA against the same merged HF model


def default_output(adapter: str | Path) -> Path:
    return Path(adapter) / "gguf"


def _base_of(adapter: Path, base: str | None) -> str:
    from utils.default_model import resolve_model_path

    config_file = adapter / "adapter_config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file}: not found; --adapter must be a finetune.py output folder")
    return resolve_model_path(base or json.loads(config_file.read_text())["base_model_name_or_path"])


def export_key(adapter: str | None, model: str, gguf_type: str, what: str) -> dict:
    """What a GGUF is made from: its stamp's key."""
    return {"what": what, "adapter": str(Path(adapter).resolve()) if adapter else None,
            "adapter_weights": weights_stamp(adapter), "model": str(model), "model_weights": weights_stamp(model),
            "gguf_type": gguf_type, "converter": llama_cpp_version()}


def export_gguf(adapter: str | Path | None = None, output: str | Path | None = None, *, model: str | None = None,
                base: str | None = None, gguf_type: str = "q8_0", lora_gguf: bool = False, check: bool = False,
                force: bool = False, merge_dtype: str = "float32") -> ExportResult:
    """Write ``output/model-<type>.gguf`` for ``adapter`` merged into its base (or for the plain ``model``),
    plus ``Modelfile`` and, with ``lora_gguf``, ``base-<type>.gguf`` and ``adapter-<type>.gguf``.

    Raises:
        FileNotFoundError: ``adapter`` is not a PEFT adapter folder / ``model`` has no config.json.
        ExportError: the converter could not be had or failed (the message names its log).
    """
    from utils.default_model import resolve_model_path

    if gguf_type not in GGUF_TYPES:
        raise ValueError(f"gguf_type must be one of {', '.join(GGUF_TYPES)}, not {gguf_type!r}")
    if (adapter is None) == (model is None):
        raise ValueError("give exactly one of adapter (a PEFT adapter folder) and model (a model folder)")
    if adapter is not None:
        adapter = Path(adapter)
        model_dir = _base_of(adapter, base)
        output = Path(output) if output else default_output(adapter)
    else:
        model_dir = resolve_model_path(model)
        if not (Path(model_dir) / "config.json").is_file():
            raise FileNotFoundError(f"{Path(model_dir) / 'config.json'}: not found; --model must be a model folder")
        if output is None:
            raise ValueError("--output is required with --model")
        output = Path(output)
    if lora_gguf and adapter is None:
        raise ValueError("--lora_gguf needs --adapter")
    output.mkdir(parents=True, exist_ok=True)
    log = output / "export.log"
    gguf = output / gguf_name("model", gguf_type)
    key = {**export_key(str(adapter) if adapter else None, model_dir, gguf_type, "model"),
           **({"merge_dtype": merge_dtype} if adapter is not None and merge_dtype != "float32" else {})}
    result = ExportResult(str(gguf), gguf_type)
    result.reused = not force and is_current(gguf, key)

    if lora_gguf:
        base_gguf, lora_file = output / gguf_name("base", gguf_type), output / gguf_name("adapter", gguf_type)
        base_key = export_key(None, model_dir, gguf_type, "base")
        if force or not is_current(base_gguf, base_key):
            convert_model(model_dir, base_gguf, gguf_type, log)
            mark_current(base_gguf, base_key)
        lora_key = export_key(str(adapter), model_dir, gguf_type, "lora")
        if force or not is_current(lora_file, lora_key):
            convert_lora(adapter, model_dir, lora_file, gguf_type, log)
            mark_current(lora_file, lora_key)
        result.base_gguf, result.lora_gguf = str(base_gguf), str(lora_file)

    with tempfile.TemporaryDirectory(prefix=".merged.", dir=output) as tmp:
        merged = model_dir
        if adapter is not None and (check or not result.reused):
            merged = merge_lora(adapter, Path(tmp) / "merged", base=model_dir, dtype=merge_dtype)
        if result.reused:
            logger.info("%s is current (same weights, type and converter): reusing it", gguf)
        else:
            convert_model(merged, gguf, gguf_type, log)
            mark_current(gguf, key)
        if check:
            result.check = check_gguf(gguf, merged, gguf_type)
            logger.info("round-trip check: %s", result.check.summary())
            if lora_gguf:
                result.lora_check = check_gguf(result.base_gguf, merged, gguf_type, lora=result.lora_gguf)
                logger.info("round-trip check (GGUF LoRA): %s", result.lora_check.summary())

    from transformers import AutoTokenizer

    template = AutoTokenizer.from_pretrained(adapter if adapter and (adapter / "tokenizer_config.json").is_file()
                                             else model_dir).chat_template
    modelfile = output / "Modelfile"
    atomic_write_text(modelfile, modelfile_text(gguf.name, template))
    result.modelfile = str(modelfile)
    return result


# -- CLI -------------------------------------------------------------------------------------------
@dataclass
class ExportArguments:
    adapter: str | None = field(default=None, metadata={
        "help": "PEFT adapter folder (finetune.py --output_dir); merged into its base before converting."})
    model: str | None = field(default=None, metadata={
        "help": "Instead of --adapter: a plain model to convert ('default', or a folder with config.json)."})
    output: str | None = field(default=None, metadata={
        "help": "Folder for the GGUF files and the Ollama Modelfile (default <adapter>/gguf)."})
    base: str | None = field(default=None, metadata={
        "help": "Base model of the adapter ('default', folder); default: the one in adapter_config.json."})
    gguf_type: str = field(default="q8_0", metadata={
        "choices": list(GGUF_TYPES), "help": "q8_0 (8-bit, half the size of f16, what people run), f16 or f32."})
    lora_gguf: bool = field(default=False, metadata={
        "help": "Also write the adapter as a GGUF LoRA and the base as a GGUF (llama.cpp applies it at load)."})
    check: bool = field(default=False, metadata={
        "help": "Compare the GGUF's logits with the merged HF model's on a few prompts; exit 1 if out of tolerance."})
    force: bool = field(default=False, metadata={"help": "Convert again even when the stamps say the GGUF is current."})
    merge_dtype: str = field(default="float32", metadata={
        "choices": ["float32", "bfloat16", "float16"],
        "help": "Dtype of the temporary merged model the converter reads; bfloat16 halves its size (and the "
                "disk it takes beside --output) for large models."})


def parse_args(argv: list[str] | None = None) -> ExportArguments:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(ExportArguments, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="Entry points: python -m finetuning.export | ku-export")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def main(argv: list[str] | None = None) -> int:
    """Export as the flags say and print the files. Exit 0; 1 when --check fails; 2 for bad input or a
    failed conversion."""
    args = parse_args(argv)
    setup_logging()
    try:
        res = export_gguf(args.adapter, args.output, model=args.model, base=args.base, gguf_type=args.gguf_type,
                          lora_gguf=args.lora_gguf, check=args.check, force=args.force, merge_dtype=args.merge_dtype)
    except (FileNotFoundError, ValueError, ExportError) as exc:
        logger.error("%s", exc)
        return 2
    for f in (res.gguf, res.base_gguf, res.lora_gguf, res.modelfile):
        if f:
            print(f)
    checks = [c for c in (res.check, res.lora_check) if c is not None]
    for c in checks:
        print(c.summary())
    if res.check is not None:
        atomic_write_text(Path(res.gguf).with_suffix(".check.json"),
                          json.dumps([asdict(c) for c in checks], indent=1))
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
