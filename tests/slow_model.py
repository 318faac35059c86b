"""A slow OpenAI-compatible chat endpoint on 127.0.0.1, for faults a real model server cannot be made to show on
demand: every completion takes ``delay_s`` seconds (a busy or hung model); ``/v1/models`` answers at once. It counts
the completions it started and finished, and those whose client had closed the connection by then (``aborted``)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import free_port

REPLY = "Northwind Robotics was founded by Ada Lovelace [1]."
#: The reply to a request asking for a JSON object (``response_format``): the shape answer v3's schema declares.
JSON_REPLY = json.dumps({"evidence": ["1.1"], "answer": "Ada Lovelace"})


class SlowModelServer:
    """Serves in a daemon thread until :meth:`stop`."""

    def __init__(self, delay_s: float, *, reply: str = REPLY) -> None:
        self.delay_s = delay_s
        self.reply = reply
        self.started = 0
        self.finished = 0
        self.aborted = 0
        self.port = free_port()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return

            def _send(self, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                try:
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    with server._lock:
                        server.aborted += 1

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._send({"object": "list", "data": [{"id": "slow", "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
                content = JSON_REPLY if request.get("response_format") else server.reply
                with server._lock:
                    server.started += 1
                time.sleep(server.delay_s)
                with server._lock:
                    server.finished += 1
                self._send(
                    {
                        "id": "c1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "slow",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                )

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
