from generation.base import SamplingConfig
from data_processor.cache import CachedLLM, ResultCache, cache_key
from tests.data_processor.scripted import ScriptedBackend


def _chat(text):
    return [{"role": "user", "content": text}]


def test_key_depends_on_model_prompt_and_sampling():
    s = SamplingConfig()
    k = cache_key("m", _chat("hi"), s)
    assert k == cache_key("m", _chat("hi"), SamplingConfig())
    assert len({k, cache_key("m2", _chat("hi"), s), cache_key("m", _chat("hi!"), s),
                cache_key("m", _chat("hi"), SamplingConfig(temperature=0.1))}) == 4


def test_cached_llm_sends_only_missing_prompts_once(tmp_path):
    backend = ScriptedBackend()
    llm = CachedLLM(backend, ResultCache(tmp_path / "c.sqlite"), SamplingConfig(), {"theme": {"max_new_tokens": 8}})
    chats = [_chat("What is the topic? Text: Alpha Beta"), _chat("other"), _chat("other")]
    first = llm.generate("theme", chats)
    assert llm.calls == 2 and backend.batches == [("theme", 2)]  # the duplicate went once
    assert llm.sampling_for("theme").max_new_tokens == 8
    llm.cache.close()
    backend2 = ScriptedBackend()
    llm2 = CachedLLM(backend2, ResultCache(tmp_path / "c.sqlite"), SamplingConfig(), {"theme": {"max_new_tokens": 8}})
    assert llm2.generate("theme", chats + [_chat("new")]) == first + [backend2.reply(_chat("new"), "theme")]
    assert backend2.batches == [("theme", 1)] and llm2.calls == 1 and llm2.cache_hits == 3


def test_replies_are_cached_as_they_arrive(tmp_path):
    """A failure in the middle of a batch keeps what was done before it."""
    import pytest

    from generation.base import BackendError

    backend = ScriptedBackend(fail_after=3)
    cache = ResultCache(tmp_path / "c.sqlite")
    llm = CachedLLM(backend, cache, SamplingConfig())
    with pytest.raises(BackendError):
        llm.generate("x", [_chat(str(i)) for i in range(6)])
    assert len(cache) == 3 and llm.calls == 3
