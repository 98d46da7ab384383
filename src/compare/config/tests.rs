//! `ocibench.toml` parsing: good files, and bad ones refused with the key
//! that is wrong and what to write instead.

use super::*;

fn env(k: &str) -> Option<String> {
    (k == "REGISTRY").then(|| "127.0.0.1:5999".to_string())
}

#[test]
fn expands_variables() {
    assert_eq!(
        expand("${REGISTRY}/py:1", &env).unwrap(),
        "127.0.0.1:5999/py:1"
    );
    assert_eq!(
        expand("${NOPE:-localhost:5000}/py", &env).unwrap(),
        "localhost:5000/py"
    );
    assert!(expand("${NOPE}/py", &env).is_err());
    assert!(expand("${REGISTRY/py", &env).is_err());
    assert_eq!(expand("plain:1", &env).unwrap(), "plain:1");
}

#[test]
fn the_embedded_default_parses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("layers/app")).unwrap();
    let c = CompareConfig::parse(DEFAULT_TOML, dir.path(), "default", &env).unwrap();
    assert_eq!(c.candidates.len(), 4);
    assert!(
        c.candidates[0].base.starts_with("127.0.0.1:5999/"),
        "{:?}",
        c.candidates
    );
    assert_eq!(c.app.port, 8080);
    assert_eq!(c.app.layers[0].dest, "/app");
    assert_eq!(c.load.duration, Some(std::time::Duration::from_secs(3)));
    assert_eq!(c.load.concurrency, 50);
    assert!(c.load.isolate, "isolation is the default");
}

#[test]
fn network_and_port_env() {
    use crate::runner::NetworkChoice;
    let dir = tempfile::tempdir().unwrap();
    let cand = "[[candidate]]\nname = \"a\"\nbase = \"x\"\n";
    let parse = |t: String| CompareConfig::parse(&t, dir.path(), "x.toml", &env);
    let c = parse(format!("[app]\nport = 8080\n{cand}")).unwrap();
    assert_eq!(c.load.network, NetworkChoice::Auto);
    assert_eq!(c.app.port_env.as_deref(), Some("PORT"));
    let c = parse(format!(
        "[app]\nport = 8080\nport_env = \"\"\n[load]\nnetwork = \"host\"\n{cand}"
    ))
    .unwrap();
    assert_eq!(c.load.network, NetworkChoice::Host);
    assert_eq!(c.app.port_env, None);
    let c = parse(format!(
        "[app]\nport = 80\nport_env = \"HTTP_PORT\"\n{cand}"
    ))
    .unwrap();
    assert_eq!(c.app.port_env.as_deref(), Some("HTTP_PORT"));
    let err = parse(format!(
        "[app]\nport = 80\n[load]\nnetwork = \"pasta\"\n{cand}"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("load.network: unknown network \"pasta\": expected auto, host or published"),
        "{err}"
    );
}

#[test]
fn isolation_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let cand = "[[candidate]]\nname = \"a\"\nbase = \"x\"\n";
    let t = format!("[app]\nport = 8080\n[load]\nisolate = false\n{cand}");
    let c = CompareConfig::parse(&t, dir.path(), "x.toml", &env).unwrap();
    assert!(!c.load.isolate);
}

#[test]
fn rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |t: &str| {
        CompareConfig::parse(t, dir.path(), "x.toml", &env)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert!(p("[app]\nport = 8080\n").contains("no [[candidate]]"));
    assert!(p("[app]\nport = 8080\nbogus = 1\n").contains("unknown field"));
    let cand = "[[candidate]]\nname = \"a\"\nbase = \"x\"\n";
    assert!(
        p(&format!(
            "[app]\nport = 8080\nlayers = [\"missing:/app\"]\n{cand}"
        ))
        .contains("does not exist")
    );
    assert!(
        p(&format!("[app]\nport = 8080\nhealth = \"h\"\n{cand}")).contains("must start with /")
    );
    assert!(p(&format!("[app]\nport = 8080\n[load]\nrepeats = 0\n{cand}")).contains("at least 1"));
    assert!(p(&format!("[app]\nport = 8080\n{cand}{cand}")).contains("used twice"));
}

fn parse_ok(t: &str, dir: &Path) -> CompareConfig {
    CompareConfig::parse(t, dir, "x.toml", &env).unwrap()
}

#[test]
fn duration_or_requests_not_both() {
    let dir = tempfile::tempdir().unwrap();
    let cand = "[[candidate]]\nname = \"a\"\nbase = \"x\"\n";
    let c = parse_ok(
        &format!("[app]\nport = 1\n[load]\nduration = \"5s\"\n{cand}"),
        dir.path(),
    );
    assert_eq!(c.load.duration, Some(std::time::Duration::from_secs(5)));
    let c = parse_ok(
        &format!("[app]\nport = 1\n[load]\nrequests = 7\n{cand}"),
        dir.path(),
    );
    assert_eq!((c.load.requests, c.load.duration), (7, None));
    let c = parse_ok(&format!("[app]\nport = 1\n{cand}"), dir.path());
    assert_eq!(
        (c.load.requests, c.load.duration),
        (1000, None),
        "the seed's default"
    );
    let err = |t: &str| {
        CompareConfig::parse(
            &format!("[app]\nport = 1\n[load]\n{t}\n{cand}"),
            dir.path(),
            "x.toml",
            &env,
        )
        .unwrap_err()
        .to_string()
    };
    assert!(err("requests = 5\nduration = \"5s\"").contains("exclude each other"));
    assert!(err("duration = \"0s\"").contains("longer than 0"));
    assert!(err("duration = \"5 parsecs\"").contains("load.duration \"5 parsecs\""));
    assert!(err("warmup = \"soon\"").contains("load.warmup \"soon\""));
    let c = parse_ok(
        &format!("[app]\nport = 1\n[load]\nwarmup = \"1s\"\n{cand}"),
        dir.path(),
    );
    assert_eq!(
        (c.load.warmup, c.load.warmup_duration),
        (0, Some(std::time::Duration::from_secs(1)))
    );
    let c = parse_ok(
        &format!("[app]\nport = 1\n[load]\nwarmup = 20\n{cand}"),
        dir.path(),
    );
    assert_eq!((c.load.warmup, c.load.warmup_duration), (20, None));
}

#[test]
fn candidates_inherit_and_override_resources() {
    let dir = tempfile::tempdir().unwrap();
    let c = parse_ok(
        "[app]\nport = 1\ncpus = 2\nmemory = \"512m\"\n\
         [[candidate]]\nname = \"a\"\nbase = \"x\"\n\
         [[candidate]]\nname = \"b\"\nbase = \"x\"\ncpus = 0.5\nmemory = \"1g\"\n",
        dir.path(),
    );
    assert_eq!(
        c.candidates[0].resources.podman_args(),
        ["--cpus=2", "--memory=512m"]
    );
    assert_eq!(
        c.candidates[1].resources.podman_args(),
        ["--cpus=0.5", "--memory=1g"]
    );
    let c = parse_ok(
        "[app]\nport = 1\n[[candidate]]\nname = \"a\"\nbase = \"x\"\n",
        dir.path(),
    );
    assert!(
        c.candidates[0].resources.podman_args().is_empty(),
        "unlimited by default"
    );
}

#[test]
fn bad_resources_name_the_key_and_the_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let err = |app: &str, cand: &str| {
        CompareConfig::parse(
            &format!(
                "[app]\nport = 1\n{app}\n[[candidate]]\nname = \"fast\"\nbase = \"x\"\n{cand}\n"
            ),
            dir.path(),
            "x.toml",
            &env,
        )
        .unwrap_err()
        .to_string()
    };
    assert!(err("cpus = 0", "").contains("app.cpus = 0 must be a positive number"));
    assert!(err("", "cpus = -1").contains("candidate fast: cpus = -1"));
    assert!(err("memory = \"lots\"", "").contains("app.memory = \"lots\""));
    assert!(err("", "memory = \"12q\"").contains("candidate fast: memory = \"12q\""));
    assert!(err("", "memory = \"0m\"").contains("candidate fast: memory"));
    assert!(err("", "bogus = 1").contains("unknown field"));
    assert!(err("", "layers = [\"nope:/app\"]").contains("candidate fast: layers"));
    for ok in ["512m", "1g", "268435456", "64k", "1024b", "2G"] {
        assert!(valid_memory(ok), "{ok}");
    }
}

#[test]
fn overrides_merge_env_by_key_and_replace_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("alt")).unwrap();
    let c = parse_ok(
        "[app]\nport = 1\nenv = [\"PORT=8080\", \"WORKERS=1\"]\n\
         entrypoint = [\"python3\", \"/app/server.py\"]\ncmd = [\"--x\"]\n\
         [[candidate]]\nname = \"plain\"\nbase = \"x\"\n\
         [[candidate]]\nname = \"tuned\"\nbase = \"x\"\n\
         env = [\"WORKERS=4\", \"MALLOC=jemalloc\"]\nentrypoint = [\"pypy3\"]\n\
         cmd = []\nlayers = [\"alt:/app\"]\ncpus = 1\n",
        dir.path(),
    );
    let plain = c.candidates[0].app(&c.app);
    assert_eq!(plain.env, ["PORT=8080", "WORKERS=1"]);
    assert_eq!(plain.entrypoint, c.app.entrypoint);
    let tuned = c.candidates[1].app(&c.app);
    assert_eq!(tuned.env, ["PORT=8080", "WORKERS=4", "MALLOC=jemalloc"]);
    assert_eq!(
        tuned.entrypoint.as_deref(),
        Some(&["pypy3".to_string()][..])
    );
    assert_eq!(tuned.cmd.as_deref(), Some(&[][..]));
    assert_eq!(tuned.layers[0].src, dir.path().join("alt"));
    assert_eq!(tuned.resources.cpus, Some(1.0));
    assert_eq!(
        merge_env(&["A=1".into(), "B".into()], &["B=2".into(), "A".into()]),
        ["A", "B=2"]
    );
}

#[test]
fn cold_start_is_on_by_default_and_takes_a_bandwidth() {
    let dir = tempfile::tempdir().unwrap();
    let cand = "[[candidate]]\nname = \"a\"\nbase = \"x\"\n";
    let c = parse_ok(&format!("[app]\nport = 1\n{cand}"), dir.path());
    assert_eq!(c.cold_start, ColdStartSettings::default());
    assert_eq!((c.cold_start.rounds, c.cold_start.bandwidth), (3, None));
    let c = parse_ok(
        &format!("[app]\nport = 1\n[cold_start]\nrounds = 0\nbandwidth = \"100Mbit/s\"\n{cand}"),
        dir.path(),
    );
    assert_eq!(
        c.cold_start,
        ColdStartSettings {
            rounds: 0,
            bandwidth: Some(12_500_000)
        }
    );
    let err = CompareConfig::parse(
        &format!("[app]\nport = 1\n[cold_start]\nbandwidth = \"fast\"\n{cand}"),
        dir.path(),
        "x.toml",
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("cold_start.bandwidth \"fast\" must start with a number"),
        "{err}"
    );
}

#[test]
fn bandwidths_as_people_write_them() {
    assert_eq!(parse_bandwidth("100Mbit/s"), Ok(12_500_000));
    assert_eq!(parse_bandwidth("1 Gbit/s"), Ok(125_000_000));
    assert_eq!(parse_bandwidth("100mbps"), Ok(12_500_000));
    assert_eq!(parse_bandwidth("12.5MB/s"), Ok(12_500_000));
    assert_eq!(parse_bandwidth("50MiB/s"), Ok(52_428_800));
    assert_eq!(parse_bandwidth("8bit"), Ok(1));
    assert!(
        parse_bandwidth("0Mbit/s")
            .unwrap_err()
            .contains("at least 1 byte")
    );
    assert!(
        parse_bandwidth("10 furlongs")
            .unwrap_err()
            .contains("unknown unit")
    );
    assert!(
        parse_bandwidth("Mbit/s")
            .unwrap_err()
            .contains("must start with a number")
    );
}

#[test]
fn an_slo_ranks_by_capacity_with_its_knobs() {
    let dir = tempfile::tempdir().unwrap();
    let cand = "[[candidate]]\nname = \"a\"\nbase = \"x\"\n";
    let c = parse_ok(&format!("[app]\nport = 1\n{cand}"), dir.path());
    assert_eq!(c.load.slo, None, "throughput unless an slo is given");
    let c = parse_ok(
        &format!("[app]\nport = 1\n[load]\nslo = \"p99=50ms\"\n{cand}"),
        dir.path(),
    );
    let s = c.load.slo.unwrap();
    assert_eq!((s.slo.percentile, s.slo.latency_ms), (99.0, 50.0));
    assert_eq!((s.precision, s.step, s.start), (0.05, None, 100.0));
    assert_eq!(s.step_length(&c.load), DEFAULT_SLO_STEP);
    let c = parse_ok(
        &format!(
            "[app]\nport = 1\n[load]\nduration = \"3s\"\n\
             slo = \"p99.9=200ms,errors=0.1%\"\nslo_precision = \"2%\"\nslo_start = 400\n{cand}"
        ),
        dir.path(),
    );
    let s = c.load.slo.unwrap();
    assert_eq!((s.slo.percentile, s.slo.latency_ms), (99.9, 200.0));
    assert!((s.slo.max_error_rate - 0.001).abs() < 1e-12);
    assert_eq!((s.precision, s.start), (0.02, 400.0));
    assert_eq!(
        s.step_length(&c.load),
        std::time::Duration::from_secs(3),
        "duration is each step's length when slo_step is not given"
    );
    let c = parse_ok(
        &format!(
            "[app]\nport = 1\n[load]\nduration = \"3s\"\nslo = \"p99=5ms\"\nslo_step = \"500ms\"\n{cand}"
        ),
        dir.path(),
    );
    assert_eq!(
        c.load.slo.unwrap().step_length(&c.load),
        std::time::Duration::from_millis(500)
    );
}

#[test]
fn a_search_starts_at_the_previous_capacity_with_a_gentle_ramp() {
    let s = SloSettings {
        slo: Slo::parse("p99=50ms").unwrap(),
        precision: 0.05,
        step: None,
        start: 100.0,
    };
    let first = s.search(None);
    assert_eq!(
        (first.start, first.ramp, first.precision),
        (100.0, 2.0, 0.05)
    );
    assert!(first.check().is_ok());
    let later = s.search(Some(1234.5));
    assert_eq!(later.start, 1234.5);
    assert!((later.ramp - 1.1).abs() < 1e-12, "{later:?}");
    assert!(later.check().is_ok());
    // A run that found nothing (capacity 0) gives no place to start.
    assert_eq!(s.search(Some(0.0)).start, 100.0);
}

#[test]
fn bad_slo_settings_name_the_key_and_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let cand = "[[candidate]]\nname = \"a\"\nbase = \"x\"\n";
    let err = |t: &str| {
        CompareConfig::parse(
            &format!("[app]\nport = 1\n[load]\n{t}\n{cand}"),
            dir.path(),
            "x.toml",
            &env,
        )
        .unwrap_err()
        .to_string()
    };
    let e = err("slo = \"p99\"");
    assert!(
        e.starts_with("x.toml: load.slo \"p99\": `p99` has no `=` (write e.g. slo = \"p99=50ms\""),
        "{e}"
    );
    assert!(err("slo = \"p101=5ms\"").contains("a percentile is above 0 and at most 100"));
    assert!(err("slo = \"errors=1%\"").contains("no latency percentile"));
    assert!(
        err("slo = 50").contains("invalid type"),
        "a string, not a number"
    );
    let e = err("slo = \"p99=50ms\"\nslo_precision = \"0%\"");
    assert!(
        e.contains("load.slo_precision \"0%\" must be a percentage above 0 and below 100%"),
        "{e}"
    );
    assert!(err("slo = \"p99=50ms\"\nslo_precision = \"lots\"").contains("slo_precision"));
    assert!(
        err("slo = \"p99=50ms\"\nslo_step = \"0s\"")
            .contains("load.slo_step must be longer than 0")
    );
    assert!(err("slo = \"p99=50ms\"\nslo_step = \"soon\"").contains("load.slo_step \"soon\""));
    assert!(err("slo = \"p99=50ms\"\nslo_start = 0").contains("load.slo_start = 0 must be a rate"));
    let e = err("slo_precision = \"5%\"");
    assert!(e.contains("load.slo_precision needs load.slo"), "{e}");
    let e = err("slo = \"p99=50ms\"\nrequests = 100");
    assert!(
        e.contains("load.requests and load.slo exclude each other"),
        "{e}"
    );
    assert!(err("slo = \"p99=50ms\"\nslo_max = 3").contains("unknown field"));
}
