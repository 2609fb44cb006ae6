"""benchmarks.bench_collect.jobs: the measuring wrapper (batching, budgets, kept prompts), the stage
breakdown, and the replay and evaluation jobs stopped by a budget."""
from __future__ import annotations

import time

import pytest

from benchmarks.bench_collect import jobs
from generation.base import BackendError, LLMBackend, SamplingConfig


class _Echo(LLMBackend):
    """Answers each prompt with its last message; counts generate() calls, 3 tokens per reply."""

    def __init__(self):
        super().__init__()
        self.model_id, self.generate_lists, self.closed, self.batch_size, self.seen_batch = "echo", [], False, 4, []

    def generate(self, chats, sampling, *, on_result=None, desc="generate"):
        self.generate_lists.append(len(chats))
        self.seen_batch.append(self.batch_size)
        self.stats.calls += len(chats)
        self.stats.completion_tokens += 3 * len(chats)
        if on_result is not None:
            for i, c in enumerate(chats):
                on_result(i, c[-1]["content"])
        return [c[-1]["content"] for c in chats]

    def close(self):
        self.closed = True


def _chats(n):
    return [[{"role": "user", "content": f"q{i}"}] for i in range(n)]


def test_bench_backend_sequential_sends_one_prompt_per_generate():
    inner = _Echo()
    inner.stats.calls = 100  # from an earlier run: must not count in this one
    seen = []
    wrapped = jobs.BenchBackend(inner, sequential=True)
    out = wrapped.generate(_chats(5), SamplingConfig(), on_result=lambda i, t: seen.append((i, t)), desc="facts")
    assert out == [f"q{i}" for i in range(5)] and seen == list(enumerate(out))
    assert inner.generate_lists == [1] * 5 and wrapped.generate_calls == 5
    assert wrapped.stats.calls == 5 and wrapped.stats.completion_tokens == 15
    assert [(c["desc"], c["prompts"], c["completion_tokens"]) for c in wrapped.calls] == [("facts", 5, 15)]
    wrapped.close()
    assert not inner.closed  # the shared model stays loaded for the next job


def test_bench_backend_batched_passes_the_whole_list_at_its_batch_size():
    inner = _Echo()
    wrapped = jobs.BenchBackend(inner, sequential=False, batch_size=16)
    assert wrapped.generate(_chats(7), SamplingConfig()) == [f"q{i}" for i in range(7)]
    assert inner.generate_lists == [7] and wrapped.generate_calls == 1
    assert inner.seen_batch == [16] and inner.batch_size == 4  # set for the call, restored after


def test_bench_backend_budget_stops_before_the_next_call_and_keeps_what_it_did():
    inner = _Echo()
    wrapped = jobs.BenchBackend(inner, sequential=True, deadline=time.monotonic() + 3600)
    wrapped.generate(_chats(2), SamplingConfig(), desc="theme")
    wrapped.deadline = time.monotonic() - 1
    with pytest.raises(jobs.BudgetExceeded):
        wrapped.generate(_chats(2), SamplingConfig(), desc="facts")
    assert wrapped.stats.completion_tokens == 6 and inner.generate_lists == [1, 1]


class _StalledServer(_Echo):
    """An api-like backend (client, timeout, retries): 'stalled' requests time out after the client's
    timeout, 'broken' ones fail at once, others answer."""

    def __init__(self):
        super().__init__()
        self.client, self.max_retries, self.during = _Client(600.0), 6, []

    def load(self):
        pass

    def generate(self, chats, sampling, *, on_result=None, desc="generate"):
        from generation.base import BackendError

        self.during.append((self.client.timeout, self.max_retries))
        if desc == "stalled":
            time.sleep(min(self.client.timeout, 5))
            raise BackendError("stage 'facts', item 0: gave up after 1 attempts (APITimeoutError)")
        if desc == "broken":
            raise BackendError("stage 'facts', item 0: HTTP 400")
        return super().generate(chats, sampling, on_result=on_result, desc=desc)


class _Client:
    def __init__(self, timeout):
        self.timeout = timeout

    def with_options(self, timeout):
        return _Client(timeout)


def test_bench_backend_budget_cuts_an_api_call_at_the_deadline_without_retries():
    """A near-stalled llama-server beside a busy core must not hold a budgeted job for timeout x retries."""
    inner = _StalledServer()
    wrapped = jobs.BenchBackend(inner, sequential=False, deadline=time.monotonic() + 3600)
    assert wrapped.generate(_chats(2), SamplingConfig(), desc="theme") == ["q0", "q1"]
    timeout, retries = inner.during[0]
    assert 3500 < timeout <= 3600 and retries == 0  # the requests end at the deadline, none retried
    assert (inner.client.timeout, inner.max_retries) == (600.0, 6)  # restored after the call
    with pytest.raises(BackendError):  # a real failure before the deadline stays one
        wrapped.generate(_chats(1), SamplingConfig(), desc="broken")
    wrapped.deadline = time.monotonic() + 0.5  # the budget runs out during the next call
    t0 = time.monotonic()
    with pytest.raises(jobs.BudgetExceeded):
        wrapped.generate(_chats(2), SamplingConfig(), desc="stalled")
    assert time.monotonic() - t0 < 4  # cut near the deadline (1 s at the least), not after 600 s x 7
    assert (inner.client.timeout, inner.max_retries) == (600.0, 6)
    unbudgeted = jobs.BenchBackend(_StalledServer(), sequential=False)
    unbudgeted.generate(_chats(1), SamplingConfig())
    assert unbudgeted.inner.during == [(600.0, 6)]  # no deadline: the backend's own timeout and retries


class _Expiring(_Echo):
    """Its first generate() call spends the budget of ``bench``, the BenchBackend wrapping it."""

    bench = None

    def generate(self, chats, sampling, **kw):
        self.bench.deadline = time.monotonic() - 1
        return super().generate(chats, sampling, **kw)


def _expiring_bench(batch_size: int) -> jobs.BenchBackend:
    """A budgeted per-batch BenchBackend whose budget runs out during its first batch."""
    inner = _Expiring()
    inner.bench = jobs.BenchBackend(inner, sequential=False, batch_size=batch_size, per_batch=True,
                                    deadline=time.monotonic() + 3600)
    return inner.bench


def test_bench_backend_per_batch_lets_the_budget_stop_a_one_call_job_between_batches():
    inner = _Echo()
    seen = []
    wrapped = jobs.BenchBackend(inner, sequential=False, batch_size=3, per_batch=True,
                                deadline=time.monotonic() + 3600)
    out = wrapped.generate(_chats(7), SamplingConfig(), on_result=lambda i, t: seen.append((i, t)), desc="eval")
    assert out == [f"q{i}" for i in range(7)] and seen == list(enumerate(out))  # indices over the whole list
    assert inner.generate_lists == [3, 3, 1] and wrapped.generate_calls == 3

    wrapped = _expiring_bench(3)
    with pytest.raises(jobs.BudgetExceeded):
        wrapped.generate(_chats(7), SamplingConfig(), desc="replay")
    assert wrapped.inner.generate_lists == [3] and wrapped.stats.completion_tokens == 9
    assert wrapped.calls[-1]["prompts"] == 3  # what it did before the budget stopped it


def test_bench_backend_keeps_each_stages_first_prompts_but_not_repairs():
    wrapped = jobs.BenchBackend(_Echo(), sequential=False, keep_prompts=3)
    greedy, hot = SamplingConfig(temperature=0.0, max_new_tokens=32), SamplingConfig(temperature=0.8)
    wrapped.generate(_chats(5), greedy, desc="theme")
    wrapped.generate(_chats(2), greedy, desc="theme-repair1")
    wrapped.generate(_chats(2), hot, desc="diversify")
    assert {k: (len(v[0]), v[1]) for k, v in wrapped.kept.items()} == {"theme": (3, greedy), "diversify": (2, hot)}


def test_stage_breakdown_counts_repairs_with_their_stage_and_underfilled_calls():
    calls = [{"desc": "facts", "prompts": 64, "seconds": 10.0, "completion_tokens": 1000},
             {"desc": "facts-repair1", "prompts": 5, "seconds": 2.0, "completion_tokens": 100},
             {"desc": "qa", "prompts": 70, "seconds": 5.0, "completion_tokens": 500}]
    b = jobs.stage_breakdown(calls, full_batch=64)
    assert b["facts"]["calls"] == 2 and b["facts"]["prompts"] == 69 and b["facts"]["completion_tokens"] == 1100
    assert b["facts"]["tok_s"] == 1100 / 12 and (b["facts"]["underfilled_calls"], b["facts"]["underfilled_seconds"]) == (1, 2.0)
    assert b["qa"]["underfilled_calls"] == 0


def test_replay_and_eval_jobs_report_the_batches_done_when_the_budget_stops_them(tmp_path):
    res = jobs.run_eval_job(_expiring_bench(3), [f"q{i}?" for i in range(7)], 8)
    assert res["status"] == "budget" and res["prompts"] == 3 and res["completion_tokens"] == 9 and res["gen_tok_s"] > 0
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"prompt {i}?\n" for i in range(40)))
    res = jobs.run_replay_job(_expiring_bench(jobs.REPLAY_BATCH), "m", prompts, tmp_path / "run", 16)
    assert res["status"] == "budget" and res["prompts"] == jobs.REPLAY_BATCH and res["rows"] is None
