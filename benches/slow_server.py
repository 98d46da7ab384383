#!/usr/bin/env python3
"""A loopback HTTP/1.1 keep-alive server whose slowness is known exactly, for the
open-loop benchmarks (benches/stall, benches/find-rate): a load generator's figures
against it can be checked against arithmetic instead of against another tool.

Modes:
  stall     answers at once, except that it stops answering for STALL_MS once a
            second: every request arriving or pending during [k s, k s + STALL_MS)
            of the server's uptime is answered at k s + STALL_MS (benches/stall).
  capacity  serves at most RATE responses per second, in arrival order (a virtual
            clock advancing 1/RATE per response, with BURST responses of tolerance
            for schedule jitter); above RATE the queue, and so the latency, grows
            without bound (benches/find-rate's known capacity).

Prints "port N" on stdout once listening (port 0: the kernel picks a free one), and on
SIGTERM or SIGINT a summary line on stdout: requests served, how many a stall or the
rate limit delayed, and the server's own handling time (request parsed to response
written) for the requests it did not delay, to show it keeps up outside its stalls.

Usage: slow_server.py stall [--stall-ms 100] [--port 0]
       slow_server.py capacity --rate 1000 [--burst 10] [--port 0]
Python 3 standard library only (asyncio protocols: about 10 us per request on one core,
so 1000 requests/s leaves it idle most of the time).
"""

import argparse
import asyncio
import collections
import signal
import sys

BODY = b'{"service":"demo","status":"ok"}\n'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)
RESPONSE_CLOSE = RESPONSE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
# Bigger than any request a load generator sends here; a peer sending more is dropped.
MAX_HEADER_BYTES = 64 * 1024


class Stats:
    def __init__(self):
        self.served = 0
        self.delayed = 0
        self.max_delay = 0.0
        # Handling time of undelayed requests, in microseconds, bucketed by 10 us.
        self.handling_us = {}

    def undelayed(self, seconds):
        b = int(seconds * 1e5) * 10
        self.handling_us[b] = self.handling_us.get(b, 0) + 1

    def handling_percentile(self, q):
        total = sum(self.handling_us.values())
        if not total:
            return None
        rank, seen = q / 100.0 * total, 0
        for b in sorted(self.handling_us):
            seen += self.handling_us[b]
            if seen >= rank:
                return b + 10
        return max(self.handling_us) + 10

    def summary(self, mode):
        p50, p99, p999 = (self.handling_percentile(q) for q in (50, 99, 99.9))
        return (
            f"server ({mode}): served {self.served} requests, {self.delayed} delayed "
            f"(longest delay {self.max_delay * 1000:.1f} ms); handling time of the others "
            f"p50 <= {p50} us, p99 <= {p99} us, p99.9 <= {p999} us"
        )


class Policy:
    """When a request arriving at `now` (loop clock) may be answered."""

    def __init__(self, args, start):
        self.mode = args.mode
        self.start = start
        if self.mode == "stall":
            self.stall = args.stall_ms / 1000.0
        else:
            self.interval = 1.0 / args.rate
            self.tolerance = args.burst * self.interval
            self.tat = start  # theoretical arrival time of the next response (GCRA)

    def release_at(self, now):
        if self.mode == "stall":
            phase = (now - self.start) % 1.0
            return now - phase + self.stall if phase < self.stall else now
        # GCRA: response k leaves no earlier than start + k/RATE - tolerance.
        self.tat = max(self.tat, now)
        at = max(now, self.tat - self.tolerance)
        self.tat += self.interval
        return at


class Connection(asyncio.Protocol):
    def __init__(self, policy, stats, loop):
        self.policy, self.stats, self.loop = policy, stats, loop
        self.buf = b""
        self.transport = None
        # Responses waiting for their release time, in arrival order: a later request
        # on this connection is never answered before an earlier one (pipelining).
        self.queue = collections.deque()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER_BYTES:
                    self.transport.close()
                break
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            self.request(b"connection: close" in head.lower())

    def request(self, close):
        now = self.loop.time()
        at = self.policy.release_at(now)
        if self.queue:
            at = max(at, self.queue[-1][2])
        elif at <= now:
            self.respond(close, now, delayed=False)
            return
        self.queue.append((close, now, at))
        if len(self.queue) == 1:
            self.loop.call_at(at, self.flush)

    def flush(self):
        now = self.loop.time()
        while self.queue and self.queue[0][2] <= now:
            close, arrived, _ = self.queue.popleft()
            self.respond(close, arrived, delayed=True)
        if self.queue:
            self.loop.call_at(self.queue[0][2], self.flush)

    def respond(self, close, arrived, delayed):
        if self.transport.is_closing():
            return
        self.transport.write(RESPONSE_CLOSE if close else RESPONSE)
        s = self.stats
        s.served += 1
        done = self.loop.time()
        if delayed:
            s.delayed += 1
            s.max_delay = max(s.max_delay, done - arrived)
        else:
            s.undelayed(done - arrived)
        if close:
            self.transport.close()


async def main(args):
    loop = asyncio.get_running_loop()
    stats = Stats()
    policy = Policy(args, loop.time())
    server = await loop.create_server(
        lambda: Connection(policy, stats, loop), "127.0.0.1", args.port, backlog=4096
    )
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    print(stats.summary(args.mode), flush=True)


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    st = sub.add_parser("stall", help="stop answering for --stall-ms once a second")
    st.add_argument("--stall-ms", type=float, default=100.0)
    cap = sub.add_parser("capacity", help="serve at most --rate responses per second")
    cap.add_argument("--rate", type=float, required=True)
    cap.add_argument("--burst", type=float, default=10.0)
    for s in (st, cap):
        s.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    if args.mode == "stall" and not 0 <= args.stall_ms < 1000:
        p.error("--stall-ms must be in [0, 1000)")
    if args.mode == "capacity" and args.rate <= 0:
        p.error("--rate must be positive")
    return args


if __name__ == "__main__":
    try:
        asyncio.run(main(parse()))
    except KeyboardInterrupt:
        sys.exit(130)
