"""A known extra CPU cost per HTTP request, for benches/verdict's A/B compares.

Loaded by `ocibench_slowdown.pth` (site imports it at start-up, before the
service's own code), so the service itself is not edited. When
`OCIBENCH_SLOWDOWN_US` is set to N > 0, every request parsed by
`http.server.BaseHTTPRequestHandler` first burns N microseconds of this
thread's CPU time (`time.thread_time_ns`, so time spent waiting for the GIL or
descheduled does not count): a slower interpreter, by a known amount.
"""

import os
import time

_US = int(os.environ.get("OCIBENCH_SLOWDOWN_US", "0") or 0)

if _US > 0:
    from http.server import BaseHTTPRequestHandler

    _parse_request = BaseHTTPRequestHandler.parse_request
    _NS = _US * 1000

    def _burn():
        end = time.thread_time_ns() + _NS
        while time.thread_time_ns() < end:
            pass

    def parse_request(self):
        _burn()
        return _parse_request(self)

    BaseHTTPRequestHandler.parse_request = parse_request
