"""Any OpenAI-compatible chat endpoint (llama.cpp server, vLLM serve, Ollama, hosted APIs).

Requests run on a bounded thread pool, paced by a requests-per-minute limiter, and each is retried
(tenacity) with exponential backoff and jitter on 429 / 5xx / timeouts / connection errors, honouring
the server's ``Retry-After``. A request that still fails raises :class:`BackendError` naming the stage
and the item; it is never turned into an empty string. The API key is read from an environment
variable and handed to the client only: it is not logged, cached or written anywhere.
"""
from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tqdm.auto import tqdm

from .base import BackendError, Chat, LLMBackend, ResultCallback, SamplingConfig, cut_repeated_lines

logger = logging.getLogger(__name__)

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
#: sent when no key is set: local servers (llama.cpp, vLLM, Ollama) ignore it
NO_KEY_PLACEHOLDER = "sk-no-key-set"
MAX_RETRY_AFTER = 600.0  # seconds


class RateLimiter:
    """At most ``requests_per_minute`` request starts in any 60 s, spaced evenly (thread-safe).

    Even spacing (one start every ``60 / rpm`` s) rather than bursts keeps hosted APIs from
    answering 429 at low average rates. ``0`` disables the limit.
    """

    def __init__(self, requests_per_minute: float, clock=time.monotonic, sleep=time.sleep) -> None:
        self.interval = 60.0 / requests_per_minute if requests_per_minute and requests_per_minute > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), else ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped."""
    delay = min(cap, base * (2 ** attempt))
    return delay / 2 + rng.uniform(0, delay / 2)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class APIBackend(LLMBackend):
    """Chat completions through the official ``openai`` client.

    Args:
        api_base: the server's base URL, e.g. ``http://127.0.0.1:8000/v1``.
        api_model: the model name the server expects.
        api_key_env: name of the environment variable holding the key.
        max_concurrency: requests in flight at once.
        requests_per_minute: start at most this many requests per minute (0 = unlimited).
        max_retries: retries per request after the first attempt.
        timeout: seconds per request.
        backoff_base / backoff_cap: seconds; delay before retry ``n`` is about ``base * 2**n``.
        clock / sleep: time source and sleep of the rate limiter and the retries (tests pass fakes).
    """

    def __init__(
        self,
        api_base: str = "http://127.0.0.1:8000/v1",
        api_model: str = "default",
        *,
        api_key_env: str = DEFAULT_KEY_ENV,
        max_concurrency: int = 8,
        requests_per_minute: float = 0,
        max_retries: int = 6,
        timeout: float = 120.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        show_progress: bool = True,
        client=None,
        clock=time.monotonic,
        sleep=time.sleep,
    ) -> None:
        super().__init__()
        self.api_base = api_base
        self.api_model = api_model
        self.api_key_env = api_key_env
        self.max_concurrency = max(1, int(max_concurrency))
        self.limiter = RateLimiter(requests_per_minute, clock=clock, sleep=sleep)
        self._sleep = sleep
        self.max_retries = max(0, int(max_retries))
        self.timeout = timeout
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.show_progress = show_progress
        self.client = client
        self.model_id = f"api:{api_base}:{api_model}"
        self._rng = random.Random()
        self._stats_lock = threading.Lock()

    def _api_key(self) -> str:
        key = os.environ.get(self.api_key_env)
        if key:
            return key
        if self.api_key_env != DEFAULT_KEY_ENV:
            raise BackendError(f"--api_key_env names ${self.api_key_env}, which is not set")
        logger.info("$%s is not set: sending no key (fine for local servers)", DEFAULT_KEY_ENV)
        return NO_KEY_PLACEHOLDER

    def load(self) -> None:
        if self.client is not None:
            return
        import openai

        # The client's own retries are off: ours honour Retry-After and surface the final error.
        self.client = openai.OpenAI(
            base_url=self.api_base, api_key=self._api_key(), max_retries=0, timeout=self.timeout
        )

    # -- one request -----------------------------------------------------------------------------
    def _request(self, chat: Chat, sampling: SamplingConfig) -> str:
        import openai

        kwargs = dict(model=self.api_model, messages=chat, max_tokens=sampling.max_new_tokens,
                      temperature=sampling.temperature, seed=sampling.seed)
        if sampling.temperature > 0:
            kwargs["top_p"] = sampling.top_p
        try:
            resp = self.client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status == 429 or status >= 500 or status == 408:
                raise _Retryable(f"HTTP {status}", parse_retry_after(exc.response.headers.get("retry-after"))) from exc
            raise  # 4xx other than 408/429: a request the server will never accept
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise _Retryable(type(exc).__name__ + (f": {exc.__cause__}" if exc.__cause__ else "")) from exc
        except ValueError as exc:  # a body that is not JSON (truncated, HTML error page, ...)
            raise _Retryable(f"unreadable response body ({exc})") from exc
        choices = getattr(resp, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise _Retryable(f"response without choices: {str(resp)[:200]!r}")
        text = choices[0].message.content
        if text is None:
            raise _Retryable("response with empty message content")
        usage = getattr(resp, "usage", None)
        with self._stats_lock:
            self.stats.calls += 1
            if usage is not None:
                self.stats.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
                self.stats.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        return cut_repeated_lines(text, sampling.stop_repeated_lines).strip()  # the server generated all of it

    def _retry_delay(self, state: RetryCallState) -> float:
        """Backoff before the next attempt: exponential with jitter, or the server's Retry-After if longer."""
        exc = state.outcome.exception()
        delay = backoff_delay(state.attempt_number - 1, self.backoff_base, self.backoff_cap, self._rng)
        if getattr(exc, "retry_after", None) is not None:  # the server knows best; an absurd value is capped
            delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER))
        return delay

    def _request_with_retries(self, chat: Chat, sampling: SamplingConfig, desc: str, index: int) -> str:
        import openai

        def log_retry(state: RetryCallState) -> None:
            logger.warning("stage '%s', item %d: %s; retry %d/%d in %.1f s", desc, index, state.outcome.exception(),
                           state.attempt_number, self.max_retries, state.next_action.sleep)

        retrying = Retrying(stop=stop_after_attempt(self.max_retries + 1), wait=self._retry_delay,
                            retry=retry_if_exception_type(_Retryable), before_sleep=log_retry, sleep=self._sleep,
                            reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    self.limiter.acquire()
                    return self._request(chat, sampling)
        except _Retryable as exc:
            raise BackendError(f"stage '{desc}', item {index}: gave up after {self.max_retries + 1} attempts "
                               f"({exc})") from exc
        except openai.APIStatusError as exc:
            raise BackendError(f"stage '{desc}', item {index}: HTTP {exc.status_code} from {self.api_base}: "
                               f"{str(exc)[:300]}") from exc
        raise AssertionError("unreachable: tenacity either returns, retries or re-raises")

    # -- the batch -------------------------------------------------------------------------------
    def generate(
        self,
        chats: list[Chat],
        sampling: SamplingConfig,
        *,
        on_result: ResultCallback | None = None,
        desc: str = "generate",
    ) -> list[str]:
        if not chats:
            return []
        self.load()
        results: list[str | None] = [None] * len(chats)
        errors: list[BackendError] = []
        t0 = time.time()
        bar = tqdm(total=len(chats), desc=desc, unit="request", disable=not self.show_progress)
        pool = ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="api")
        try:
            # Submit lazily, at most max_concurrency (+ a few queued) at a time, so an interrupt
            # leaves little work in flight and ``on_result`` runs here, in the caller's thread.
            pending: dict = {}
            next_i = 0
            while next_i < len(chats) or pending:
                while next_i < len(chats) and len(pending) < self.max_concurrency * 2:
                    fut = pool.submit(self._request_with_retries, chats[next_i], sampling, desc, next_i)
                    pending[fut] = next_i
                    next_i += 1
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    try:
                        results[i] = fut.result()
                    except BackendError as exc:
                        errors.append(exc)
                        continue
                    except Exception as exc:  # noqa: BLE001 - anything else is reported per item too
                        errors.append(BackendError(f"stage '{desc}', item {i}: {type(exc).__name__}: {exc}"))
                        continue
                    bar.update(1)
                    if on_result is not None:
                        on_result(i, results[i])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
            self.stats.seconds += time.time() - t0
        if errors:
            more = f" (and {len(errors) - 1} more failed requests)" if len(errors) > 1 else ""
            raise BackendError(f"{errors[0]}{more}") from errors[0]
        return [r for r in results]  # type: ignore[misc]

    def close(self) -> None:
        if self.client is not None and hasattr(self.client, "close"):
            self.client.close()
        self.client = None
