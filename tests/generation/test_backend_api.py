"""The api backend against a local fake OpenAI-compatible server that injects faults."""
import pytest

from generation import BackendError, build_backend
from generation.api import APIBackend, RateLimiter, backoff_delay, parse_retry_after
from generation.base import SamplingConfig
from tests.data_processor.conftest import read_jsonl
from tests.data_processor.fake_openai import FakeOpenAI

SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"


def _chat(i):
    return [{"role": "user", "content": f"Text:\nItem Number{i}\n\nGive this text a title of at most six words."}]


def _backend(srv, **kw):
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_cap", 0.05)
    kw.setdefault("show_progress", False)
    return APIBackend(srv.base_url, "fake-model", **kw)


def test_every_fault_is_retried_and_results_stay_in_order():
    faults = ["429", "429_no_retry_after", "500", "503", "reset", "timeout", "truncated", "not_json", "no_choices"]
    with FakeOpenAI(faults=faults, retry_after="0", timeout_sleep=1.5) as srv:
        b = _backend(srv, max_concurrency=1, max_retries=len(faults), timeout=0.5)
        got = []
        out = b.generate([_chat(i) for i in range(3)], SamplingConfig(), on_result=lambda i, t: got.append(i), desc="theme")
    assert out == [srv.model.reply_to_chat(_chat(i)).strip() for i in range(3)]
    assert sorted(got) == [0, 1, 2] and b.stats.calls == 3 and b.stats.prompt_tokens == 30


def test_retry_after_is_honoured():
    slept = []
    with FakeOpenAI(faults=["429", "429"], retry_after="7") as srv:
        b = _backend(srv, max_concurrency=1, sleep=slept.append)
        assert b.generate([_chat(0)], SamplingConfig()) == [srv.model.reply_to_chat(_chat(0)).strip()]
    assert slept == [7.0, 7.0] and len(srv.starts) == 3  # the server's wait, not the 0.01 s backoff
    slept.clear()
    with FakeOpenAI(faults=["429"], retry_after="99999") as srv:
        _backend(srv, max_concurrency=1, sleep=slept.append).generate([_chat(0)], SamplingConfig())
    assert slept == [600.0]  # an absurd Retry-After is capped


def test_gives_up_after_bounded_retries_naming_stage_and_item():
    with FakeOpenAI(faults=["ok"], always="500") as srv:
        b = _backend(srv, max_concurrency=1, max_retries=2)
        done = {}
        with pytest.raises(BackendError, match=r"stage 'facts', item 1: gave up after 3 attempts \(HTTP 500\)"):
            b.generate([_chat(0), _chat(1)], SamplingConfig(), on_result=done.__setitem__, desc="facts")
        assert len(srv.starts) == 1 + 3  # item 0 once, item 1 three times
        assert done == {0: srv.model.reply_to_chat(_chat(0)).strip()}  # the finished item was handed over before the error


def test_client_errors_are_not_retried():
    with FakeOpenAI(always="400") as srv:
        b = _backend(srv, max_retries=5)
        with pytest.raises(BackendError, match="item 0: HTTP 400"):
            b.generate([_chat(0)], SamplingConfig(), desc="qa")
        assert len(srv.starts) == 1


def test_concurrency_and_rate_limit_measured_at_the_server():
    with FakeOpenAI(latency=0.3) as srv:
        b = _backend(srv, max_concurrency=3)
        b.generate([_chat(i) for i in range(9)], SamplingConfig())
        assert srv.max_in_flight == 3
    # The limiter paces request starts: with a frozen clock, every start after the first waits one more
    # interval (0.1 s at 600 per minute), whatever the concurrency.
    slept = []
    with FakeOpenAI() as srv:
        b = _backend(srv, max_concurrency=4, requests_per_minute=600, clock=lambda: 0.0, sleep=slept.append)
        b.generate([_chat(i) for i in range(8)], SamplingConfig())
        assert len(srv.starts) == 8
    assert sorted(round(x, 6) for x in slept) == [round(0.1 * k, 6) for k in range(1, 8)]


def test_rate_limiter_and_backoff_math():
    t = [0.0]
    slept = []
    lim = RateLimiter(120, clock=lambda: t[0], sleep=slept.append)  # every 0.5 s
    for _ in range(3):
        lim.acquire()
    assert slept == [0.5, 1.0]
    import random

    rng = random.Random(0)
    delays = [backoff_delay(a, 1.0, 8.0, rng) for a in range(6)]
    assert all(0.5 * min(8, 2**a) <= d <= min(8, 2**a) for a, d in enumerate(delays))
    assert parse_retry_after("3") == 3.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_full_run_through_faults_matches_a_clean_run(collect, docs_dir, tmp_path):
    ref = tmp_path / "ref.jsonl"
    assert collect("--data_path", str(docs_dir), "--save_dir", str(ref))[0] == 0
    # Replies that are not the requested format (the pipeline's repair round fixes them), then every
    # transport fault (the backend retries them; at most 7 in a row for one item, under max_retries).
    faults = ["I am sorry, I cannot do that.", "```\n{{{ ]]"]
    faults += ["429", "500", "reset", "truncated", "not_json", "503", "429_no_retry_after"]
    with FakeOpenAI(faults=faults, retry_after="0") as srv:
        backend = _backend(srv, max_concurrency=4, max_retries=8)
        out = tmp_path / "api.jsonl"
        rc, _ = collect("--data_path", str(docs_dir), "--save_dir", str(out), backend=backend)
    assert rc == 0
    assert out.read_text() == ref.read_text()


def test_key_from_env_only_and_never_written_or_logged(docs_dir, tmp_path, monkeypatch, caplog, capsys):
    import logging

    from data_processor.pipeline import main

    monkeypatch.setenv("MY_COLLECTOR_KEY", SECRET)
    with FakeOpenAI(faults=["500", "429"], retry_after="0") as srv, caplog.at_level(logging.DEBUG):
        rc = main(["--model_type", "api", "--api_base", srv.base_url, "--api_model", "fake",
                   "--api_key_env", "MY_COLLECTOR_KEY", "--data_path", str(docs_dir),
                   "--save_dir", str(tmp_path / "o" / "qa.jsonl"), "--tokenizer_name_or_path", "words",
                   "--eval_fraction", "0.3", "--log_level", "DEBUG"])
    assert rc == 0
    assert set(srv.auth_headers) == {f"Bearer {SECRET}"}  # the key was used ...
    written = b"".join(p.read_bytes() for p in (tmp_path / "o").iterdir())
    assert (tmp_path / "o" / "qa.jsonl.cache.sqlite").exists() and read_jsonl(tmp_path / "o" / "qa.jsonl")
    captured = capsys.readouterr()
    for where in (written, caplog.text.encode(), captured.out.encode(), captured.err.encode()):
        assert SECRET.encode() not in where  # ... and appears nowhere else


def test_missing_named_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    b = build_backend("api", api_base="http://127.0.0.1:9/v1", api_model="m", api_key_env="NO_SUCH_KEY_VAR")
    with pytest.raises(BackendError, match=r"\$NO_SUCH_KEY_VAR, which is not set"):
        b.generate([_chat(0)], SamplingConfig())


def test_build_backend_rejects_unknown_names_and_arguments():
    with pytest.raises(ValueError, match="unknown model_type"):
        build_backend("tgi")
    with pytest.raises(ValueError, match="unknown arguments"):
        build_backend("api", api_bse="typo")
    assert build_backend("api", batch_size=8, api_base="http://x/v1").api_base == "http://x/v1"  # hf args ignored
