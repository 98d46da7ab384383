//! The chaos test (issue 12): several `ocibench` processes pulling, sizing, pushing and
//! building at once into one shared cache, through a fault-injecting proxy
//! ([`crate::support::chaos_proxy`]) in front of the real registry, some of them
//! SIGKILLed mid-operation. Afterwards, judged by independent tools: every blob in the
//! cache hashes to its name, no temporary file remains (after one final command), every
//! image a push or build reported is complete in the registry (skopeo), and every
//! operation that failed said so with exit 1 and an `error:` line: never exit 0 with a
//! wrong result, never 2, never a panic or a signal the test did not send.
//!
//! Environment (all optional; `scripts/chaos.sh [OPS]` runs 1,000 operations):
//!
//! | variable                   | default | meaning                                      |
//! |----------------------------|---------|----------------------------------------------|
//! | `OCIBENCH_CHAOS_OPS`       | 200     | operations in all                            |
//! | `OCIBENCH_CHAOS_WORKERS`   | 4       | `ocibench` processes at once                 |
//! | `OCIBENCH_CHAOS_SEED`      | 12      | seeds the proxy and the workload             |
//! | `OCIBENCH_CHAOS_RATE`      | 0.08    | probability that a request gets a fault      |
//! | `OCIBENCH_CHAOS_FAULTS`    | (below) | fault weights, `name=weight,...`             |
//! | `OCIBENCH_CHAOS_STALL_MS`  | 1500    | length of a stall                            |
//! | `OCIBENCH_CHAOS_KILL`      | 0.05    | probability of SIGKILLing an operation       |
//! | `OCIBENCH_CHAOS_CHUNK`     | 65536   | upload chunk (`OCIBENCH_PUSH_CHUNK_BYTES`)   |
//! | `OCIBENCH_CHAOS_WATCHDOG_S`| 600     | an operation still running is killed, a hang |
//!
//! Fault weights default to 1, 3 for the body faults (`truncate`, `corrupt`,
//! `stall_body`: GETs only) and 6 for the chunk faults (`replay_chunk`,
//! `reorder_chunk`: PATCHes only); names in [`crate::support::chaos_proxy::Fault`].
//!
//! On main as of 4f599bd the run fails on one check only: SIGKILLed pulls and builds
//! leave `blobs/sha256/.tmp-*` and `ocibench/.unpack-*` that no later command removes
//! (the store sweeps temp files only after 24 h). That is the cache work of issue 12;
//! `OCIBENCH_CHAOS_KILL=0` checks everything else meanwhile.
//!
//! The summary (ops, outcomes and faults by kind, the commonest `error:` lines, wall
//! time) is printed whatever happens; run with `--nocapture` to see it.

mod checks;
mod scripted;
mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::chaos_proxy::{ChaosConfig, ChaosProxy};
use crate::support::fixtures::fixture_layout;
use crate::support::{Registry, TestContext, Variant, push_fixture};
use workload::{OpKind, OpResult, Outcome, Source, World, run_op};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        _ => default,
    }
}

#[test]
fn concurrent_pulls_pushes_and_builds_through_faults_keep_cache_and_registry_whole() {
    let ops: usize = env_or("OCIBENCH_CHAOS_OPS", 200);
    let workers: usize = env_or("OCIBENCH_CHAOS_WORKERS", 4);
    let kill_rate: f64 = env_or("OCIBENCH_CHAOS_KILL", 0.05);
    let chunk_bytes: u64 = env_or("OCIBENCH_CHAOS_CHUNK", 64 * 1024);
    let watchdog = Duration::from_secs(env_or("OCIBENCH_CHAOS_WATCHDOG_S", 600));

    let registry = Registry::start();
    let sources: Vec<Source> = [
        ("base/busybox", Variant::Oci),
        ("base/docker", Variant::DockerV2s2),
        ("base/app", Variant::TwoLayers),
        ("base/multi", Variant::MultiPlatformIndex),
    ]
    .into_iter()
    .map(|(repo, variant)| Source {
        repo_tag: format!("{repo}:1"),
        image: push_fixture(&registry, repo, "1", variant),
    })
    .collect();
    let layouts = vec![
        fixture_layout(Variant::Oci),
        fixture_layout(Variant::TwoLayers),
    ];
    let config = ChaosConfig::from_env();
    let seed = config.seed;
    let proxy = ChaosProxy::start(registry.addr(), config);
    let ctx = TestContext::new();
    let out_dir = ctx.root().join("outputs");
    std::fs::create_dir_all(&out_dir).expect("mkdir outputs");
    let world = World {
        ctx: &ctx,
        proxy: proxy.addr().to_string(),
        sources,
        layouts,
        chunk_bytes,
        kill_rate,
        watchdog,
        epoch: proxy.started(),
        out_dir: out_dir.clone(),
    };

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::<OpResult>::new());
    std::thread::scope(|s| {
        for w in 0..workers {
            let (world, next, results) = (&world, &next, &results);
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed ^ ((w as u64 + 1) * 0x9e37_79b9));
                loop {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    if id >= ops {
                        break;
                    }
                    let result = run_op(world, id, &mut rng);
                    results.lock().unwrap().push(result);
                }
            });
        }
    });
    let chaos_time = started.elapsed();
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.id);

    // The final command: straight to the registry, on the cache the chaos left; once it
    // has opened the store, no temporary file of a finished or killed process may remain.
    let last = ctx.run(["pull", "--json", &registry.reference("base/busybox:1")]);
    let mut violations: Vec<String> = results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Violation(v) => Some(format!("op {} `{}`: {v}", r.id, r.command)),
            _ => None,
        })
        .collect();
    if last.code() != Some(0) {
        violations.push(format!(
            "the final `{}` exited {}: {}",
            last.command,
            last.status,
            last.stderr.trim()
        ));
    }
    let cache = checks::check_cache(&ctx.cache_dir);
    if !cache.temps.is_empty() {
        violations.push(format!(
            "{} temporary files or dirs left in the cache after the final command: {}",
            cache.temps.len(),
            cache.temps.join(", ")
        ));
    }
    violations.extend(cache.problems.iter().cloned());
    let outputs = checks::check_outputs(&out_dir, &results);
    violations.extend(outputs.problems.iter().cloned());
    let pushed: Vec<_> = results.iter().filter_map(|r| r.pushed.clone()).collect();
    violations.extend(checks::check_registry(&registry, &pushed, 2));

    let log = write_log(&results, &proxy, &violations);
    println!(
        "{}",
        summary(
            &results,
            &proxy,
            &cache,
            &outputs,
            pushed.len(),
            chaos_time,
            started.elapsed()
        )
    );
    println!("log of every op and fault: {}", log.display());
    println!("violations: {}", violations.len());
    for v in &violations {
        println!("  - {v}");
    }
    assert!(
        violations.is_empty(),
        "{} violations (see the summary above):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// Writes every operation (times, command, outcome, stderr unless it succeeded) and
/// every fault injected, merged in time order, to `$CARGO_TARGET_TMPDIR/chaos/last-run.log`
/// (or `OCIBENCH_CHAOS_LOG`); returns its path.
fn write_log(results: &[OpResult], proxy: &ChaosProxy, violations: &[String]) -> PathBuf {
    use std::fmt::Write;
    let path = std::env::var_os("OCIBENCH_CHAOS_LOG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chaos/last-run.log"));
    let mut lines: Vec<(Duration, String)> = Vec::new();
    for r in results {
        let outcome = match &r.outcome {
            Outcome::Ok => "ok".to_string(),
            Outcome::Failed(_) => "failed (exit 1)".to_string(),
            Outcome::Killed => "SIGKILLed by the test".to_string(),
            Outcome::Violation(v) => format!("VIOLATION: {v}"),
        };
        lines.push((r.span.0, format!("op {} start: {}", r.id, r.command)));
        let mut end = format!(
            "op {} end after {:.3} s: {outcome}",
            r.id,
            (r.span.1 - r.span.0).as_secs_f64()
        );
        for line in r.stderr.lines() {
            let _ = write!(end, "\n    | {line}");
        }
        lines.push((r.span.1, end));
    }
    for e in proxy.events() {
        lines.push((
            e.at,
            format!("fault {} on {} {}", e.fault.name(), e.method, e.target),
        ));
    }
    lines.sort_by_key(|(at, _)| *at);
    let mut text = String::new();
    for v in violations {
        let _ = writeln!(text, "violation: {v}");
    }
    for (at, line) in lines {
        let _ = writeln!(text, "{:>9.3} {line}", at.as_secs_f64());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir for the chaos log");
    }
    std::fs::write(&path, text).expect("write the chaos log");
    path
}

/// The run's figures: ops and outcomes by kind, faults by kind, commonest errors, time.
fn summary(
    results: &[OpResult],
    proxy: &ChaosProxy,
    cache: &checks::CacheFindings,
    outputs: &checks::OutputFindings,
    pushed: usize,
    chaos_time: Duration,
    total_time: Duration,
) -> String {
    use std::fmt::Write;
    let c = proxy.config();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "chaos: {} ops in {:.1} s (checks included: {:.1} s); seed {}, fault rate {}, stall {} ms",
        results.len(),
        chaos_time.as_secs_f64(),
        total_time.as_secs_f64(),
        c.seed,
        c.rate,
        c.stall.as_millis()
    );
    let _ = writeln!(
        s,
        "{:<16}{:>7}{:>7}{:>11}{:>8}{:>11}",
        "op", "total", "ok", "failed(1)", "killed", "violation"
    );
    let mut by_kind: BTreeMap<OpKind, [usize; 5]> = BTreeMap::new();
    for r in results {
        let row = by_kind.entry(r.kind).or_default();
        row[0] += 1;
        row[match r.outcome {
            Outcome::Ok => 1,
            Outcome::Failed(_) => 2,
            Outcome::Killed => 3,
            Outcome::Violation(_) => 4,
        }] += 1;
    }
    let mut totals = [0usize; 5];
    for (kind, row) in &by_kind {
        let _ = writeln!(
            s,
            "{:<16}{:>7}{:>7}{:>11}{:>8}{:>11}",
            kind.name(),
            row[0],
            row[1],
            row[2],
            row[3],
            row[4]
        );
        for (t, v) in totals.iter_mut().zip(row) {
            *t += v;
        }
    }
    let _ = writeln!(
        s,
        "{:<16}{:>7}{:>7}{:>11}{:>8}{:>11}",
        "all", totals[0], totals[1], totals[2], totals[3], totals[4]
    );
    let injected = proxy.injected();
    let _ = writeln!(
        s,
        "faults injected: {} in {} requests ({} not answered by the registry)",
        injected.values().sum::<u64>(),
        proxy.requests(),
        proxy.unforwarded()
    );
    for (fault, n) in &injected {
        let _ = writeln!(s, "  {:<24}{n:>6}", fault.name());
    }
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for r in results {
        if let Outcome::Failed(line) = &r.outcome {
            *errors.entry(error_shape(line)).or_default() += 1;
        }
    }
    let mut errors: Vec<(String, usize)> = errors.into_iter().collect();
    errors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let _ = writeln!(s, "failed operations by error (numbers and digests as #):");
    for (line, n) in errors.iter().take(15) {
        let _ = writeln!(s, "  {n:>5}  {line}");
    }
    let _ = write!(
        s,
        "checked: {} cache blobs hashed, {} cache images complete-checked, {} temp files, \
         {pushed} pushed images verified by skopeo, {} archives read by skopeo ({} temp \
         files beside them, all of SIGKILLed builds)",
        cache.blobs,
        cache.images,
        cache.temps.len(),
        outputs.archives,
        outputs.killed_temps
    );
    s
}

/// An `error:` line with its variable parts (ports, sizes, digests, upload ids and
/// their state tokens) replaced by `#`, so that like failures count together.
fn error_shape(line: &str) -> String {
    let mut out = String::new();
    let mut token = String::new();
    let mut in_query = false;
    let flush = |token: &mut String, out: &mut String| {
        let variable = token.bytes().any(|b| b.is_ascii_digit())
            && !["v2", "sha256"].contains(&token.as_str());
        out.push_str(if variable { "#" } else { token });
        token.clear();
    };
    for c in line.chars() {
        if in_query {
            // An upload URL's `?_state=...` token is noise; it ends at a space or ')'.
            in_query = !(c == ' ' || c == ')');
            if in_query {
                continue;
            }
        }
        if c.is_ascii_alphanumeric() {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            if c == '?' {
                in_query = true;
                out.push_str("?...");
                continue;
            }
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out.chars().take(300).collect()
}
