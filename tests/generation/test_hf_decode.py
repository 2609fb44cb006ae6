"""Continuous batching (generation/hf_decode.py) against ``model.generate`` on a tiny model.

The shared tiny model repeats one token forever, so these tests redraw its weights with a larger spread
(varied tokens) and give it stop tokens taken from a first greedy run: replies then end at different
steps, rows leave the batch and waiting prompts join it.
"""
import pytest

from generation.base import SamplingConfig
from generation.hf import HFBackend, _generate_batch, chunk_size
from generation.hf_decode import continuous_generate, supports_continuous

NEW = 12


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    import torch

    backend = HFBackend(str(tiny_model_dir), dtype="float32", workers=1, show_progress=False)
    backend.load()
    model, tok = backend.model, backend.tokenizer
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    prompts = [f"prompt {i}: " + "word " * (i % 5 * 7) + f"tail {i * 13}" for i in range(10)]
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
             for p in prompts]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    model.generation_config.eos_token_id = None
    free = model.generate(**enc, max_new_tokens=NEW, do_sample=False, pad_token_id=tok.pad_token_id)
    # Stop tokens: the token at step 1 + i % 9 of reply i (it may end other replies sooner, too).
    stops = {int(free[i, enc["input_ids"].shape[1] + 1 + i % 9]) for i in range(len(texts))}
    model.generation_config.eos_token_id = sorted(stops - {tok.pad_token_id}) + [tok.eos_token_id]
    return model, tok, texts


def test_the_tiny_model_qualifies_and_a_repetition_penalty_does_not(tiny):
    model, _, _ = tiny
    assert supports_continuous(model)
    model.generation_config.repetition_penalty = 1.3
    try:
        assert not supports_continuous(model)
    finally:
        model.generation_config.repetition_penalty = None


@pytest.mark.parametrize("slots", [1, 3, 4, 10])
def test_greedy_replies_equal_generate_whatever_the_slots(tiny, slots):
    model, tok, texts = tiny
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=NEW)
    reference, ref_tokens = _generate_batch(model, tok, texts, greedy, 0, decode="generate")
    per_row = [_generate_batch(model, tok, [t], greedy, 0, decode="generate")[1] for t in texts]
    assert len(set(per_row)) >= 4, "the stop tokens must end replies at different steps, or nothing is tested"
    replies, tokens = continuous_generate(model, tok, texts, greedy, 0, slots=slots)
    assert replies == reference
    assert tokens == ref_tokens


def test_each_reply_is_reported_as_it_ends(tiny):
    model, tok, texts = tiny
    heard = []
    replies, _ = continuous_generate(model, tok, texts, SamplingConfig(temperature=0.0, max_new_tokens=NEW), 0,
                                     slots=4, on_reply=lambda i, text: heard.append((i, text)))
    assert sorted(heard) == sorted(enumerate(replies))            # every reply once, with its final text
    assert [i for i, _ in heard] != list(range(len(texts)))       # in the order they ended, not prompt order


def test_sampling_is_reproducible_and_seeded(tiny):
    model, tok, texts = tiny
    hot = SamplingConfig(temperature=1.5, top_p=0.99, max_new_tokens=NEW)
    a = continuous_generate(model, tok, texts, hot, 7, slots=3)
    assert a == continuous_generate(model, tok, texts, hot, 7, slots=3)
    assert a[0] != continuous_generate(model, tok, texts, hot, 8, slots=3)[0]
    assert a[1] <= NEW * len(texts)


def test_the_backend_uses_it_on_a_cpu_and_gives_generates_replies(tiny_model_dir):
    chats = [[{"role": "user", "content": f"question {i} " + "x " * i}] for i in range(9)]
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=6)
    outs = {}
    for decode, workers in (("generate", 1), ("auto", 1), ("auto", 2)):
        backend = HFBackend(str(tiny_model_dir), dtype="float32", workers=workers, batch_size=2, decode=decode,
                            show_progress=False)
        seen = []
        outs[decode, workers] = backend.generate(chats, greedy, on_result=lambda i, text: seen.append((i, text)))
        backend.close()
        assert sorted(seen) == list(enumerate(outs[decode, workers]))  # each reply reported once
        assert backend.stats.calls == 9 and backend.stats.completion_tokens > 0
    assert outs["auto", 1] == outs["generate", 1] == outs["auto", 2]
    with pytest.raises(ValueError, match="decode must be one of"):
        HFBackend(decode="beam")


def test_chunks_hold_several_batches_and_every_worker_gets_some():
    assert chunk_size(600, 2, 32, continuous=False) == 32
    assert chunk_size(40, 2, 20, continuous=True) == 20            # one batch per worker: no bigger chunks
    for n, workers, slots in [(600, 2, 32), (257, 2, 32), (1000, 3, 16), (65, 2, 32), (9000, 2, 32)]:
        size = chunk_size(n, workers, slots, continuous=True)
        assert slots <= size <= 4 * slots and -(-n // size) >= workers, (n, workers, slots, size)
    assert chunk_size(600, 2, 32, continuous=True) == 100           # 3 chunks per worker
