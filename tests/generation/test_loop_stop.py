"""Replies that loop end early: ``SamplingConfig.stop_repeated_lines`` (generation/base.py)."""
import pytest

from generation.base import SamplingConfig, cut_repeated_lines, repeated_lines_end
from data_processor.cache import cache_key

LOOP = ("1. Ilsabet joined the survey in 1931.\n"
        "2. She found blue worms on the glacier.\n"
        "3. She found blue worms on the glacier.\n"
        "4. she found  blue worms on the glacier.\n"
        "5. She found blue worms on the glacier.\n"
        "6. She found blue wo")


def test_a_loop_ends_at_the_line_that_reaches_the_limit():
    assert cut_repeated_lines(LOOP, 1) == LOOP[: LOOP.index("4.")].strip()
    assert cut_repeated_lines(LOOP, 2) == LOOP[: LOOP.index("5.")].strip()  # numbering, case and spaces ignored
    assert cut_repeated_lines(LOOP, 3) == LOOP[: LOOP.index("6.")].strip()
    assert cut_repeated_lines(LOOP, 4) == LOOP  # only three repeats end with a newline
    assert repeated_lines_end(LOOP, 0) is None and cut_repeated_lines(LOOP, 0) == LOOP


def test_distinct_lines_blank_lines_and_years_are_not_repeats():
    text = "Q: When did it start?\nA: In 1847.\n\n\n1846: a storm sank boats.\n1847: a storm sank boats.\n- Q: x\n"
    assert repeated_lines_end(text, 1) is None
    assert repeated_lines_end("- same line\n* same line\n", 1) == len("- same line\n* same line\n")


def test_a_stop_at_a_newline_is_where_the_complete_reply_is_cut():
    # The hf backend checks at each newline token; the api/vllm backends cut the whole reply. Both must agree.
    end = repeated_lines_end(LOOP, 2)
    for k in range(len(LOOP) + 1):
        prefix = LOOP[:k]
        if prefix.endswith("\n"):
            assert (repeated_lines_end(prefix, 2) is not None) == (k >= end)


def test_unused_it_leaves_cache_keys_alone_and_used_it_changes_them():
    chat = [{"role": "user", "content": "hi"}]
    assert "stop_repeated_lines" not in SamplingConfig().to_dict()
    assert cache_key("m", chat, SamplingConfig()) != cache_key("m", chat, SamplingConfig(stop_repeated_lines=2))


def test_the_api_backend_cuts_a_looping_reply(monkeypatch):
    from generation.api import APIBackend
    from tests.data_processor.fake_openai import FakeOpenAI

    with FakeOpenAI() as srv:
        monkeypatch.setattr(srv.model, "reply_to_chat", lambda chat: LOOP)
        backend = APIBackend(srv.base_url, "fake-model", show_progress=False)
        chats = [[{"role": "user", "content": "facts"}]]
        assert backend.generate(chats, SamplingConfig(stop_repeated_lines=2)) == [cut_repeated_lines(LOOP, 2)]
        assert backend.generate(chats, SamplingConfig()) == [LOOP]


@pytest.mark.slow
def test_the_hf_backend_stops_decoding_a_loop_in_both_decoders(default_model_dir):
    """The real 135M model loops on this prompt (greedy): "1. Skarv is a mountain in Norway.", "2. The Skarv
    is a mountain in Norway.", ... Both decoders stop the row there; the other reply is untouched."""
    import torch

    from generation.hf import HFBackend, _generate_batch

    torch.set_num_threads(1)
    backend = HFBackend(str(default_model_dir), dtype="float32", workers=1, show_progress=False)
    backend.load()
    model, tok = backend.model, backend.tokenizer
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
             for p in ("List ten facts about the Skarrow Glacier, one per line.",
                       "Write the sentence 'The cat sat on the mat.' on twenty lines, numbered.")]
    free = SamplingConfig(temperature=0.0, max_new_tokens=100)
    stop = SamplingConfig(temperature=0.0, max_new_tokens=100, stop_repeated_lines=2)
    full, full_tokens = _generate_batch(model, tok, texts, free, 0, decode="continuous")
    assert repeated_lines_end(full[0], 2) is not None, "the prompt no longer loops: nothing is tested"
    for decode in ("continuous", "generate"):
        replies, tokens = _generate_batch(model, tok, texts, stop, 0, decode=decode)
        assert replies == [cut_repeated_lines(r, 2) for r in full], decode
        assert replies[0] != full[0] and replies[1] == full[1]
        assert tokens < full_tokens - 20, decode
