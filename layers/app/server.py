"""The demo microservice ocibench compares base images with.

Standard library only, so it runs on any Python 3 base. `GET /` does a little
real work per request (JSON encoding of a computed document, as a typical API
endpoint would); `GET /health` answers 200 once the server is up.
"""

import hashlib
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8080"))
ITEMS = [{"id": i, "name": f"item-{i}", "price": round(i * 1.07, 2)} for i in range(50)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as production servers do
    # Headers and body used to leave in two sends without TCP_NODELAY: the body
    # then waited for the client's delayed ACK (~40 ms), so at concurrency 1 the
    # service answered 23 req/s and compare measured the timer, not the base.
    # TCP_NODELAY, and a buffered writer that handle_one_request flushes once per
    # response (headers and body in one send), as production servers do.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024

    def _send(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/health":
            self._send(200, b'{"status":"ok"}')
        elif self.path == "/" or self.path.startswith("/?"):
            total = sum(item["price"] for item in ITEMS)
            digest = hashlib.sha256(repr(ITEMS).encode()).hexdigest()
            doc = {
                "service": "ocibench-demo",
                "python": sys.version.split()[0],
                "items": ITEMS[:10],
                "count": len(ITEMS),
                "total": round(total, 2),
                "etag": digest[:16],
            }
            self._send(200, json.dumps(doc).encode())
        else:
            self._send(404, b'{"error":"not found"}')

    def log_message(self, fmt, *args):  # quiet: logs would cost throughput
        pass


class Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of 100 connections would
    # then wait on SYN retries (seconds) and measure the backlog, not the service.
    request_queue_size = 1024
    daemon_threads = True


def main():
    server = Server(("0.0.0.0", PORT), Handler)
    print(f"listening on :{PORT}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
