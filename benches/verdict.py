#!/usr/bin/env python3
"""benches/verdict's arithmetic (standard library only): reads `compare --json`
documents, records one line per compare, calibrates the slowdown and prints the
summary. Called by benches/verdict; not a test.

Every read of compare's JSON goes through `claims()` and `round_rps()`: the report's
statistics are being rewritten (paired intervals, family-wise control), so when
its schema moves, these two functions are the only ones to adapt.

    verdict.py record  RESULTS.jsonl KIND SLOWDOWN INDEX WALL_SECONDS COMPARE.json
    verdict.py ratio   COMPARE.json BASE NAME          # geometric mean of NAME/BASE per round
    verdict.py burn    PERCENT BURN:RATIO...           # the burn giving PERCENT% fewer requests/s
    verdict.py summary RESULTS.jsonl [CALIBRATION.tsv]
"""

import json
import math
import os
import statistics
import sys
from itertools import combinations

# ---------------------------------------------------------------- reading compare --json


def claims(doc):
    """The differences the compare claimed: [(faster, slower, ratio or None)].

    Today's schema: `significant: [{faster, slower, ratio, p_value}]`; anything in
    `noise` is not a claim. A later schema may list every pair with a verdict flag
    (`pairs`/`comparisons: [{faster, slower, significant: bool}]`): read that too.
    """
    out = []
    for d in doc.get("significant") or []:
        if isinstance(d, dict) and d.get("faster") and d.get("slower"):
            out.append((d["faster"], d["slower"], d.get("ratio")))
    for key in ("pairs", "comparisons"):
        for d in doc.get(key) or []:
            if not isinstance(d, dict) or d.get("significant") is not True:
                continue
            if d.get("faster") and d.get("slower"):
                c = (d["faster"], d["slower"], d.get("ratio"))
                if c[:2] not in [x[:2] for x in out]:
                    out.append(c)
    return out


def run_rps(run):
    """One raw run's requests/s (None when not measured)."""
    if not isinstance(run, dict):
        return None
    v = run.get("requests_per_second")
    if isinstance(v, (int, float)) and v > 0:
        return float(v)
    done, secs = run.get("completed"), run.get("total_seconds")
    if isinstance(done, (int, float)) and isinstance(secs, (int, float)) and secs > 0:
        return done / secs
    return None


def round_rps(doc):
    """{candidate name: [requests/s of round 1, round 2, ...]} from the raw runs
    (compare appends each candidate's runs in round order)."""
    out = {}
    for c in doc.get("candidates") or []:
        runs = c.get("runs") or []
        out[c.get("name", "?")] = [run_rps(r) for r in runs]
    return out


def paired_log_ratios(rps, a, b):
    """log(a/b) per round where both were measured."""
    return [
        math.log(x / y)
        for x, y in zip(rps.get(a, []), rps.get(b, []))
        if x and y
    ]


def geo_ratio(rps, a, b):
    logs = paired_log_ratios(rps, a, b)
    return math.exp(statistics.fmean(logs)) if logs else None


# ---------------------------------------------------------------- statistics


def binom_cdf(k, n, p):
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def clopper_pearson(k, n, conf=0.95):
    """Exact (conservative) two-sided interval for a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    a = (1 - conf) / 2

    def solve(f):  # f increasing in p on [0, 1]; the p with f(p) = 0
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if f(mid) < 0:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    low = 0.0 if k == 0 else solve(lambda p: (1 - binom_cdf(k - 1, n, p)) - a)
    high = 1.0 if k == n else solve(lambda p: a - binom_cdf(k, n, p))
    return (low, high)


def rate(k, n):
    if n == 0:
        return "n/a (no compares)"
    lo, hi = clopper_pearson(k, n)
    return f"{k}/{n} = {100 * k / n:.0f}% (95% Clopper-Pearson {100 * lo:.0f}-{100 * hi:.0f}%)"


def pct(r):
    return "n/a" if r is None else f"{100 * (r - 1):+.1f}%"


# ---------------------------------------------------------------- commands


def cmd_record(path, kind, slowdown, index, wall, compare_json):
    with open(compare_json) as f:
        doc = json.load(f)
    rps = round_rps(doc)
    rec = {
        "kind": kind,
        "slowdown_percent": float(slowdown) if slowdown not in ("", "-") else None,
        "index": int(index),
        "wall_seconds": float(wall),
        "json": compare_json,
        "claims": [{"faster": f, "slower": s, "ratio": r} for f, s, r in claims(doc)],
        "recommendation": (doc.get("recommendation") or {}).get("name"),
        "rps": rps,
        "load": doc.get("load"),
    }
    with open(path, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    cs = ", ".join(f"{c['faster']} > {c['slower']}" for c in rec["claims"]) or "none"
    med = ", ".join(
        f"{n} {statistics.median([x for x in v if x]):.0f}" for n, v in rps.items() if any(v)
    )
    print(f"  {wall:>6}s  claims: {cs}; median req/s: {med}")


def cmd_ratio(compare_json, base, name):
    with open(compare_json) as f:
        doc = json.load(f)
    r = geo_ratio(round_rps(doc), name, base)
    if r is None:
        sys.exit(f"error: no paired runs of {name} and {base} in {compare_json}")
    print(f"{r:.4f}")


def cmd_burn(percent, *points):
    """The burn (us/request) expected to give `percent`% fewer requests/s, from
    measured points "BURN:RATIO" (0:1 is always known). The service is not always
    CPU-bound, so the effect is not linear in the burn: interpolate between the two
    points that bracket the target, in y = 1/ratio - 1 (the relative extra time per
    request, linear in the burn when the service is CPU-bound); outside them,
    extrapolate from the two largest burns."""
    target = 1 / (1 - float(percent) / 100) - 1
    pts = {0.0: 0.0}
    for p in points:
        b, r = p.split(":")
        pts[float(b)] = 1 / float(r) - 1
    pts = sorted(pts.items())
    if max(y for _, y in pts) <= 0.005:
        sys.exit(f"error: the burns {[b for b, _ in pts]} us changed requests/s by under 0.5%; "
                 "raise PROBE_US")
    pair = next(((a, b) for a, b in zip(pts, pts[1:]) if a[1] <= target <= b[1]), None)
    if pair is None:
        pair = (pts[-2], pts[-1]) if target > pts[-1][1] else (pts[0], pts[1])
    (b0, y0), (b1, y1) = pair
    if y1 - y0 <= 1e-9:  # noise: fall back to proportionality through the largest effect
        b1, y1 = max(pts, key=lambda p: p[1])
        b0, y0 = 0.0, 0.0
    b = b0 + (target - y0) * (b1 - b0) / (y1 - y0)
    print(max(1, round(b)))


def cmd_summary(path, calibration=None):
    recs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                recs.append(json.loads(line))
    true_ratio = {}
    if calibration and os.path.exists(calibration):
        with open(calibration) as f:
            for line in f:
                p = line.split()
                if len(p) >= 3 and p[0] != "slowdown_percent":
                    true_ratio[float(p[0])] = (int(p[1]), float(p[2]))

    aa = [r for r in recs if r["kind"] == "aa"]
    ab = [r for r in recs if r["kind"] == "ab"]
    load = next((r["load"] for r in recs if r.get("load")), None)
    if load:
        print("load per run:", ", ".join(f"{k}={v}" for k, v in sorted(load.items())))

    print("\nA/A (four candidates, one base: every claimed difference is false)")
    k = sum(1 for r in aa if r["claims"])
    print(f"  false-claim rate (compares claiming any difference): {rate(k, len(aa))}")
    pairs = sum(len(list(combinations(r["rps"], 2))) for r in aa)
    print(f"  pairs claimed: {sum(len(r['claims']) for r in aa)} of {pairs}")
    spreads, ests, round_logs = [], [], []
    for r in aa:
        meds = [statistics.median([x for x in v if x]) for v in r["rps"].values() if any(v)]
        if len(meds) > 1:
            spreads.append(max(meds) / min(meds))
        for a, b in combinations(sorted(r["rps"]), 2):
            logs = paired_log_ratios(r["rps"], a, b)
            if logs:
                ests.append(statistics.fmean(logs))
                round_logs.extend(logs)
    if spreads:
        print(f"  spread of candidate medians within a compare (max/min): median {pct(statistics.median(spreads))}, "
              f"worst {pct(max(spreads))}")
    if ests:
        # The true log-ratio of identical images is 0, so the root mean square of the
        # compares' estimates is the standard error of one pair's estimate.
        se = math.sqrt(statistics.fmean(e * e for e in ests))
        nd = statistics.NormalDist()
        z80 = nd.inv_cdf(0.80)
        mde = math.exp((nd.inv_cdf(0.975) + z80) * se)
        # Holm's first step (Bonferroni) over the 6 pairs of four candidates.
        mde_fw = math.exp((nd.inv_cdf(1 - 0.05 / 12) + z80) * se)
        sd_round = math.sqrt(statistics.fmean(x * x for x in round_logs))
        print(f"  per-round log-ratio between identical images: RMS {100 * sd_round:.1f}% "
              f"({len(round_logs)} round pairs)")
        print(f"  standard error of a pair's mean paired log-ratio, across compares: "
              f"{100 * se:.2f}% ({len(ests)} pair estimates)")
        print(f"  minimum difference detectable with 80% power: {pct(mde)} at alpha 0.05 per pair, "
              f"{pct(mde_fw)} with family-wise alpha 0.05 over 6 pairs")

    for s in sorted({r["slowdown_percent"] for r in ab}):
        rs = [r for r in ab if r["slowdown_percent"] == s]
        base, slow = "base", f"slow{s:g}"
        det = sum(1 for r in rs if any(c["faster"] == base and c["slower"] == slow for c in r["claims"]))
        rev = sum(1 for r in rs if any(c["faster"] == slow and c["slower"] == base for c in r["claims"]))
        ratios = [x for x in (geo_ratio(r["rps"], slow, base) for r in rs) if x]
        print(f"\nA/B, {s:g}% slowdown (base against the same base burning CPU per request)")
        if s in true_ratio:
            us, tr = true_ratio[s]
            print(f"  measured true ratio (calibration, long runs): {tr:.3f} ({pct(tr)}), burn {us} us/request")
        print(f"  detection rate (base claimed faster): {rate(det, len(rs))}")
        print(f"  reversals (slowed variant claimed faster): {rate(rev, len(rs))}")
        if ratios:
            print(f"  ratio seen per compare (geometric mean of per-round slow/base): median "
                  f"{statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}")

    print("\nwall time per compare")
    for kind in ("aa", "ab"):
        w = [r["wall_seconds"] for r in recs if r["kind"] == kind]
        if w:
            print(f"  {kind.upper().replace('A', 'A/', 1)}: median {statistics.median(w):.0f} s, "
                  f"range {min(w):.0f}-{max(w):.0f} s over {len(w)} compares")


def main(argv):
    cmds = {"record": cmd_record, "ratio": cmd_ratio, "burn": cmd_burn, "summary": cmd_summary}
    if len(argv) < 2 or argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
