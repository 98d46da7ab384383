#!/usr/bin/env python3
"""Reads what the open-loop benchmarks' tools printed and renders their tables, so
the bash scripts (benches/loadgen-rate, benches/stall, benches/find-rate) only run
things, and every field name of ocibench's, oha's and wrk's output is read in one
place.

  rate_report.py record TOOL TARGET OUT   one JSON line for results.jsonl from a run's
                                          output OUT (and OUT.time: "user sys rss_kib")
  rate_report.py rate-table RESULTS       benches/loadgen-rate's table (medians per
                                          rate and tool, ocibench's ratios to oha)
  rate_report.py stall-table RESULTS STALL_MS RATE CONCURRENCY
                                          benches/stall's table and verdict
  rate_report.py find-rate OUT CAPACITY   benches/find-rate's summary and verdict

Latencies are in ms. "corrected" means measured from each request's scheduled send
time (coordinated omission corrected, as wrk2 and oha --latency-correction do).
Python 3 standard library only.
"""

import json
import statistics
import sys

PCTS = ("p50", "p90", "p95", "p99", "p999", "max")


def read_time(path):
    try:
        user, sys_, rss = open(path).read().split()[-3:]
        return float(user) + float(sys_), int(rss)
    except (OSError, ValueError):
        return None, None


def ocibench_record(doc):
    lat = doc.get("latency_ms") or {}
    unc = doc.get("uncorrected_latency_ms") or {}
    rate = doc.get("rate") or {}
    rec = {f: lat.get(f) for f in PCTS + ("mean",)}
    rec.update({"u" + f: unc.get(f) for f in PCTS + ("mean",)})
    rec["achieved"] = rate.get("achieved_per_second", doc.get("requests_per_second"))
    rec["completed"] = doc.get("completed")
    rec["bad"] = (doc.get("failed") or 0) + (doc.get("non_2xx") or 0)
    rec["requests"] = doc.get("requests")
    for k in ("scheduled", "sent", "late", "max_lag_ms", "kept_up"):
        rec[k] = rate.get(k)
    return rec


def oha_record(doc):
    pct = doc.get("latencyPercentiles") or {}
    ms = lambda v: None if v is None else v * 1000.0  # noqa: E731 (oha prints seconds)
    rec = {f: ms(pct.get("p99.9" if f == "p999" else f)) for f in PCTS if f != "max"}
    rec["max"] = ms(doc["summary"].get("slowest"))
    rec["mean"] = ms(doc["summary"].get("average"))
    rec["achieved"] = doc["summary"].get("requestsPerSec")
    codes = doc.get("statusCodeDistribution") or {}
    rec["completed"] = sum(codes.values())
    # oha counts requests cut at -z's deadline as errors ("aborted due to deadline").
    errs = {k: v for k, v in (doc.get("errorDistribution") or {}).items() if "deadline" not in k}
    rec["bad"] = sum(v for c, v in codes.items() if not c.startswith("2")) + sum(errs.values())
    rec["requests"] = rec["completed"] + sum(errs.values())
    return rec


def wrk_record(text):
    """wrk's own report plus benches/wrk-percentiles.lua's lines (microseconds)."""
    vals, rps, inside = {}, None, False
    for line in text.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        if line.startswith("--- percentiles_us"):
            inside = True
        elif inside and len(line.split()) == 2:
            k, v = line.split()
            vals[k] = float(v)
    rec = {"p999" if k == "p99.9" else k: vals[k] / 1000.0 for k in vals if k.startswith("p") or k in ("max", "mean")}
    rec["achieved"] = rps
    rec["completed"] = int(vals.get("requests", 0))
    rec["bad"] = int(vals.get("errors", 0))
    rec["requests"] = rec["completed"]  # wrk counts errors among its requests
    return rec


def record(tool, target, out):
    text = open(out).read()
    try:
        if tool.startswith("ocibench"):
            rec = ocibench_record(json.loads(text))
        elif tool.startswith("oha"):
            rec = oha_record(json.loads(text))
        elif tool.startswith("wrk"):
            rec = wrk_record(text)
        else:
            raise SystemExit(f"rate_report.py: unknown tool {tool}")
    except (ValueError, KeyError) as e:
        print(f"warning: no result from {tool} ({e}); its output: {text[:300]!r}", file=sys.stderr)
        return
    rec["tool"], rec["target"] = tool, float(target)
    rec["cpu_s"], rec["rss_kib"] = read_time(out + ".time")
    print(json.dumps(rec))


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    if a is None or not b:
        return "-"
    r = a / b
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.3f}x"


def grouped(rows, fields):
    """Medians per (target, tool), keeping first-seen order."""
    out = {}
    for r in rows:
        out.setdefault((r["target"], r["tool"]), []).append(r)
    med = {}
    for key, rs in out.items():
        m = {f: median([r.get(f) for r in rs]) for f in fields}
        m["rss_kib"] = max((r["rss_kib"] or 0) for r in rs) or None  # peak over rounds
        m["rounds"] = len(rs)
        m["kept_up"] = all(r.get("kept_up") is not False for r in rs)
        m["late"] = max((r.get("late") or 0) for r in rs)
        m["bad"] = max((r.get("bad") or 0) for r in rs)
        med[key] = m
    return med


def rate_table(path):
    fields = ("achieved", "p50", "p99", "p999", "up99", "cpu_s")
    med = grouped(load(path), fields)
    head = ("target/s", "tool", "achieved/s", "p50 ms", "p99 ms", "p99.9 ms",
            "uncorr. p99 ms", "CPU s", "peak RSS MiB", "non-2xx+errors")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    targets = sorted({t for t, _ in med})
    for t in targets:
        for (tt, tool), m in med.items():
            if tt != t:
                continue
            note = "" if m["kept_up"] else f" (fell behind: {m['late']} late)"
            print(f"| {t:.0f} | {tool}{note} | {fmt(m['achieved'], '.0f')} | {fmt(m['p50'], '.3f')} | "
                  f"{fmt(m['p99'], '.3f')} | {fmt(m['p999'], '.3f')} | {fmt(m['up99'], '.3f')} | "
                  f"{fmt(m['cpu_s'])} | {fmt(m['rss_kib'] and m['rss_kib'] / 1024, '.1f')} | {m['bad']} |")
        o, h = med.get((t, "ocibench")), med.get((t, "oha"))
        if o and h:
            print(f"| {t:.0f} | **ocibench / oha** | {ratio(o['achieved'], h['achieved'])} | "
                  f"{ratio(o['p50'], h['p50'])} | {ratio(o['p99'], h['p99'])} | {ratio(o['p999'], h['p999'])} | - | "
                  f"{ratio(o['cpu_s'], h['cpu_s'])} | {ratio(o['rss_kib'], h['rss_kib'])} | |")
    print()
    print("Latencies are corrected (from each request's scheduled time) for both tools; medians of "
          f"{max(m['rounds'] for m in med.values())} round(s), peak RSS the highest round.")


def stall_table(path, stall_ms, rate, concurrency):
    rows = load(path)
    fields = ("achieved", "mean", "umean") + PCTS + tuple("u" + f for f in PCTS)
    med = grouped(rows, fields)
    head = ("tool", "latency", "achieved/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for (_, tool), m in med.items():
        kind = {"ocibench": "corrected", "oha-corrected": "corrected", "oha": "uncorrected",
                "wrk": "uncorrected (closed loop)", "ocibench-baseline": "corrected, no stall",
                "oha-baseline": "corrected, no stall"}.get(tool, "")
        line = lambda k, pre="": (f"| {tool} | {k} | {fmt(m['achieved'], '.0f')} | "  # noqa: E731
                                  + " | ".join(fmt(m[pre + f], ".2f") for f in PCTS) + " |")
        print(line(kind))
        if tool.startswith("ocibench") and m.get("up99") is not None:
            print(line("uncorrected", "u"))
    print("| wrk2 | corrected | - | not run: wrk2 is not packaged in Debian and cannot be fetched here | | | | | |")
    # What the arithmetic says: a share stall/1000 of the requests is scheduled inside a
    # stall, each waiting until its end, uniformly 0..stall ms; so the corrected p(q) is
    # stall * (1 - (100 - q) / (100 * share)) for q above 100 * (1 - share).
    share = stall_ms / 1000.0
    expect = lambda q: max(0.0, stall_ms * (1 - (100 - q) / (100 * share)))  # noqa: E731
    print()
    print(f"expected corrected latency at {rate:.0f}/s with a {stall_ms:.0f} ms stall once a second: "
          f"p90 {expect(90):.0f} ms, p95 {expect(95):.0f} ms, p99 {expect(99):.0f} ms, p99.9 {expect(99.9):.0f} ms")
    # Uncorrected, open loop: only the first `concurrency` requests of a stall are sent
    # into it (the rest wait for a connection, unmeasured), each waiting the rest of it.
    window = min(concurrency / rate * 1000.0, stall_ms)
    caught = window / 1000.0

    def expect_u(q):
        tail = (100 - q) / 100
        return 0.0 if tail >= caught else stall_ms - tail / caught * window

    print(f"expected uncorrected latency (open loop, {concurrency:.0f} connections: {caught * 100:.0f}% of the requests "
          f"wait in a stall): p90 {expect_u(90):.0f} ms, p95 {expect_u(95):.0f} ms, p99 {expect_u(99):.0f} ms, "
          f"p99.9 {expect_u(99.9):.0f} ms: the two differ below the top {caught * 100:.0f}%")
    o = med.get((rate, "ocibench"))
    if not o or o.get("p99") is None:
        print("verdict: ocibench not measured (this build has no --rate)")
        return
    lo, hi = 0.6 * expect(99), stall_ms * 1.15
    ok = lo <= o["p99"] <= hi
    print(f"verdict: ocibench's corrected p99 {o['p99']:.1f} ms is {'' if ok else 'NOT '}near the stall "
          f"(expected ~{expect(99):.0f} ms, accepted {lo:.0f}..{hi:.0f} ms); uncorrected p99 {fmt(o.get('up99'), '.1f')} ms, "
          f"p95 corrected {fmt(o.get('p95'), '.1f')} ms vs uncorrected {fmt(o.get('up95'), '.1f')} ms")
    for tool in ("oha-corrected", "oha", "wrk"):
        m = med.get((rate, tool)) or next((v for (t, k), v in med.items() if k == tool), None)
        if m and m.get("p99") is not None:
            print(f"  {tool}: p99 {m['p99']:.1f} ms, p95 {fmt(m['p95'], '.1f')} ms")
    # Little's law: a closed loop holds at most `concurrency` requests in flight, so
    # its mean latency times its rate cannot exceed it if every request is counted.
    w = next((v for (_, k), v in med.items() if k == "wrk"), None)
    if w and w.get("mean") is not None and w.get("achieved"):
        inflight = w["mean"] / 1000.0 * w["achieved"]
        print(f"  wrk consistency: mean {w['mean']:.2f} ms x {w['achieved']:.0f}/s = {inflight:.1f} requests in flight "
              f"on {concurrency:.0f} connections" + (" (more than it holds: wrk's latency statistics do not weight every "
                                                     "request equally)" if inflight > 1.05 * concurrency else ""))


def find_rate(out, capacity):
    doc = json.load(open(out))
    prec = doc.get("precision")
    found = doc.get("found_per_second")
    steps = doc.get("steps") or []
    slo = doc.get("slo") or {}
    pct = lambda s: None if not s else s.get("percentile_ms")  # noqa: E731
    print("| step | rate/s | achieved/s | p%g ms | error rate | passed | why not |" % slo.get("percentile", 99))
    print("|---|---|---|---|---|---|---|")
    for i, s in enumerate(steps, 1):
        print(f"| {i} | {fmt(s.get('rate'), '.0f')} | {fmt(s.get('achieved_per_second'), '.0f')} | "
              f"{fmt(s.get('percentile_ms'), '.2f')} | {fmt(s.get('error_rate'), '.4f')} | {s.get('passed')} | "
              f"{s.get('reason') or ''} |")
    print()
    at, failed = doc.get("at_found"), doc.get("first_failed")
    print(f"known capacity {capacity:.0f}/s; SLO {json.dumps(slo)}; precision {fmt(prec and prec * 100, '.1f')}%; "
          f"{len(steps)} steps, converged: {doc.get('converged')}")
    print(f"found {fmt(found, '.0f')}/s (p{slo.get('percentile', 99):g} {fmt(pct(at), '.2f')} ms there); "
          f"first failed {fmt(failed and failed.get('rate'), '.0f')}/s (p{slo.get('percentile', 99):g} "
          f"{fmt(pct(failed), '.2f')} ms, error rate {fmt(failed and failed.get('error_rate'), '.4f')})")
    if found is None or prec is None:
        print("verdict: NO rate found")
        return
    off = (found - capacity) / capacity
    ok = abs(off) <= prec
    print(f"verdict: found {found:.0f}/s is {'within' if ok else 'NOT within'} {prec * 100:.1f}% of the known "
          f"capacity {capacity:.0f}/s ({off * 100:+.1f}%)")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "record" and len(argv) == 5:
        record(argv[2], argv[3], argv[4])
    elif cmd == "rate-table" and len(argv) == 3:
        rate_table(argv[2])
    elif cmd == "stall-table" and len(argv) == 6:
        stall_table(argv[2], float(argv[3]), float(argv[4]), float(argv[5]))
    elif cmd == "find-rate" and len(argv) == 4:
        find_rate(argv[2], float(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
