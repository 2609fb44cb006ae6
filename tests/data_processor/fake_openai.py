"""A local OpenAI-compatible chat-completions server (127.0.0.1 only) that injects faults on a schedule.

Replies come from :meth:`ScriptedBackend.reply_to_chat`, so a collector run against it can be compared with
a run on the scripted backend itself. Every request is recorded (arrival time, in-flight count,
headers) so tests can measure rate limiting and concurrency at the server.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.data_processor.scripted import ScriptedBackend

FAULTS = ("ok", "429", "429_no_retry_after", "500", "503", "reset", "timeout", "truncated", "not_json",
          "no_choices", "400")


class FakeOpenAI:
    """``with FakeOpenAI(faults=[...]) as srv:`` then point a client at ``srv.base_url``.

    Args:
        faults: actions for the first requests, in arrival order (see :data:`FAULTS`); then "ok".
        always: an action for every request after ``faults`` (default "ok").
        latency: seconds each OK reply takes (to measure concurrency).
        timeout_sleep: how long a "timeout" request hangs.
        retry_after: the Retry-After header value sent with "429".
    """

    def __init__(self, faults=(), always="ok", latency=0.0, timeout_sleep=2.0, retry_after="1"):
        self.faults = list(faults)
        self.always = always
        self.latency = latency
        self.timeout_sleep = timeout_sleep
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self.starts: list[float] = []
        self.auth_headers: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.served_ok = 0
        self.model = ScriptedBackend()
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with srv.lock:
                    srv.starts.append(time.monotonic())
                    srv.auth_headers.append(self.headers.get("Authorization", ""))
                    action = srv.faults.pop(0) if srv.faults else srv.always
                    srv.in_flight += 1
                    srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
                try:
                    srv._handle(self, action, body)
                finally:
                    with srv.lock:
                        srv.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _send(self, h, status, payload: bytes, headers=None, content_type="application/json"):
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(payload)

    def _handle(self, h, action, body):
        if action == "429":
            return self._send(h, 429, b'{"error": {"message": "rate limited"}}', {"Retry-After": self.retry_after})
        if action == "429_no_retry_after":
            return self._send(h, 429, b'{"error": {"message": "rate limited"}}')
        if action in ("500", "503", "400"):
            return self._send(h, int(action), b'{"error": {"message": "server says no"}}')
        if action == "reset":
            h.close_connection = True
            h.connection.shutdown(2)  # drop the connection without a reply
            return None
        if action == "timeout":
            time.sleep(self.timeout_sleep)
            h.close_connection = True
            return None
        if action == "truncated":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "400")
            h.end_headers()
            h.wfile.write(b'{"id": "chatcmpl-1", "choi')
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
            return None
        if action == "not_json":
            return self._send(h, 200, b"<html>502 bad gateway</html>", content_type="text/html")
        if action == "no_choices":
            return self._send(h, 200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())
        if self.latency:
            time.sleep(self.latency)
        text = self.model.reply_to_chat(body["messages"]) if action == "ok" else action  # any other string: the reply
        with self.lock:
            self.served_ok += 1
        payload = {
            "id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        return self._send(h, 200, json.dumps(payload).encode())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
