//! `build --nix-closure` with real (offline) Nix: local derivations whose builder is
//! `/bin/sh`, built by Debian's nix-bin without a sandbox.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;
use crate::support::podman::{LoadedImage, ULIMITS, podman, unique_name};
use crate::support::{TestContext, Variant, fixture_layout, run};

/// A Nix expression: `libc` is used by everything, `greet-lib` and `greet-data`
/// by the app; `extra` adds two more users of libc for the popularity test.
/// `version` changes only `greet-data` (and so the app that refers to it).
fn expression(version: &str, salt: &str) -> String {
    format!(
        r#"
let
  mk = name: script: derivation {{
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    salt = "{salt}";
  }};
  libc = mk "fake-libc" ''
    /bin/mkdir -p $out/lib; echo 'say() {{ echo "$@"; }}' > $out/lib/libc.sh
  '';
  lib = mk "greet-lib" ''
    /bin/mkdir -p $out/lib
    printf '. %s/lib/libc.sh\ngreet() {{ say "hello from nix"; }}\n' ${{libc}} > $out/lib/greet.sh
  '';
  data = mk "greet-data" ''
    /bin/mkdir -p $out/share; echo "{version}" > $out/share/version
  '';
  app = mk "greet-app" ''
    /bin/mkdir -p $out/bin
    printf '#!/bin/sh\n. %s/lib/greet.sh\ngreet\n/bin/cat %s/share/version\n' ${{lib}} ${{data}} > $out/bin/greet
    /bin/chmod +x $out/bin/greet
  '';
  tool1 = mk "tool-one" ''/bin/mkdir -p $out; echo ${{libc}} > $out/uses'';
  tool2 = mk "tool-two" ''/bin/mkdir -p $out; echo ${{libc}} > $out/uses'';
in {{ inherit app tool1 tool2; }}
"#
    )
}

/// Builds attribute `attr` of the expression; returns the store path.
fn nix_build(dir: &Path, version: &str, salt: &str, attr: &str) -> PathBuf {
    support::tools::require("nix-build", "nix-bin");
    let file = dir.join(format!("{attr}-{version}.nix"));
    std::fs::write(&file, expression(version, salt)).unwrap();
    let out = support::tools::run_stdout(
        Command::new("nix-build")
            .arg(&file)
            .args(["-A", attr, "--no-out-link", "--option", "sandbox", "false"])
            .args(["--option", "build-users-group", ""]),
    );
    PathBuf::from(out.trim())
}

/// A unique salt per test process, so parallel runs never share store paths with
/// stale state, while one test's builds share them.
fn salt() -> String {
    format!("{}-{}", std::process::id(), unique_name("nix"))
}

/// Builds onto the busybox fixture; returns (build JSON, config JSON).
fn build(
    ctx: &TestContext,
    closures: &[&Path],
    extra: &[&str],
) -> (serde_json::Value, serde_json::Value) {
    let out = ctx.path(&format!("out-{}", unique_name("o")));
    let mut args: Vec<String> = vec![
        "build".into(),
        "--json".into(),
        "--from".into(),
        fixture_layout(Variant::Oci).oci_ref(),
    ];
    for c in closures {
        args.push("--nix-closure".into());
        args.push(c.display().to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("-o".into());
    args.push(format!("oci:{}:t", out.display()));
    let v = ctx.run(&args).success().json();
    let cfg = support::tools::run_stdout(
        support::tools::skopeo()
            .args(["inspect", "--config", "--raw"])
            .arg(format!("oci:{}:t", out.display())),
    );
    (v, serde_json::from_str(&cfg).unwrap())
}

/// The added closure layers: (store path names in the layer, layer digest).
fn closure_layers(v: &serde_json::Value, cfg: &serde_json::Value) -> Vec<(String, String)> {
    let history: Vec<&str> = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
        .map(|h| h["created_by"].as_str().unwrap_or(""))
        .collect();
    let layers = v["image"]["layers"].as_array().unwrap();
    assert_eq!(history.len(), layers.len());
    history
        .iter()
        .zip(layers)
        .filter_map(|(h, l)| {
            h.strip_prefix("ocibench build --nix-closure: ")
                .map(|names| {
                    // Drop the hashes: `<hash>-greet-lib` -> `greet-lib`.
                    let names: Vec<&str> = names
                        .split(' ')
                        .map(|n| n.split_once('-').map_or(n, |x| x.1))
                        .collect();
                    (names.join(" "), l["digest"].as_str().unwrap().to_string())
                })
        })
        .collect()
}

#[test]
fn a_closure_runs_under_podman() {
    let ctx = TestContext::new();
    let salt = salt();
    let app = nix_build(ctx.root(), "v1", &salt, "app");
    let (v, cfg) = build(
        &ctx,
        &[&app],
        &["--cmd", &format!(r#"["{}/bin/greet"]"#, app.display())],
    );
    let layers = closure_layers(&v, &cfg);
    let names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(
        names[0], "fake-libc",
        "the most popular path comes first: {names:?}"
    );
    assert_eq!(
        names[3], "greet-app",
        "nothing depends on the app: {names:?}"
    );

    // Run it: the script from the closure sources the other store paths.
    let name = format!("localhost/{}:1", unique_name("nix"));
    let archive = ctx.path("nix.tar");
    ctx.run([
        "build",
        "--from",
        &fixture_layout(Variant::Oci).oci_ref(),
        "--nix-closure",
        &app.display().to_string(),
        "--cmd",
        &format!(r#"["{}/bin/greet"]"#, app.display()),
        "-o",
        &format!("docker-archive:{}:{name}", archive.display()),
    ])
    .success();
    let _image = LoadedImage(name.clone());
    run(podman().args(["load", "-i"]).arg(&archive));
    let said = support::tools::run_stdout(podman().args(["run", "--rm"]).args(ULIMITS).arg(&name));
    assert_eq!(said, "hello from nix\nv1\n");
}

#[test]
fn changing_one_derivation_changes_only_its_layers() {
    let ctx = TestContext::new();
    let salt = salt();
    let before = nix_build(ctx.root(), "v1", &salt, "app");
    let after = nix_build(ctx.root(), "v2", &salt, "app");
    let (v1, c1) = build(&ctx, &[&before], &[]);
    let (v2, c2) = build(&ctx, &[&after], &[]);
    let one: std::collections::BTreeMap<String, String> =
        closure_layers(&v1, &c1).into_iter().collect();
    let two: std::collections::BTreeMap<String, String> =
        closure_layers(&v2, &c2).into_iter().collect();
    eprintln!("before: {one:#?}\nafter:  {two:#?}");
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        two.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        one["fake-libc"], two["fake-libc"],
        "untouched path keeps its digest"
    );
    assert_eq!(
        one["greet-lib"], two["greet-lib"],
        "untouched path keeps its digest"
    );
    assert_ne!(
        one["greet-data"], two["greet-data"],
        "the changed derivation's layer changes"
    );
    assert_ne!(
        one["greet-app"], two["greet-app"],
        "and so does the path that refers to it"
    );
    // The base layer is untouched too.
    assert_eq!(
        v1["image"]["layers"][0]["digest"],
        v2["image"]["layers"][0]["digest"]
    );
}

#[test]
fn max_layers_merges_the_least_popular() {
    let ctx = TestContext::new();
    let salt = salt();
    let app = nix_build(ctx.root(), "v1", &salt, "app");
    let t1 = nix_build(ctx.root(), "v1", &salt, "tool1");
    let t2 = nix_build(ctx.root(), "v1", &salt, "tool2");
    let (v, cfg) = build(&ctx, &[&app, &t1, &t2], &["--max-layers", "2"]);
    let layers = closure_layers(&v, &cfg);
    assert_eq!(layers.len(), 2, "{layers:?}");
    assert_eq!(
        layers[0].0, "fake-libc",
        "the most popular path keeps a layer of its own"
    );
    let rest: Vec<&str> = layers[1].0.split(' ').collect();
    assert_eq!(
        rest.len(),
        5,
        "the other five share the last layer: {rest:?}"
    );
    // Without the budget, one layer per path.
    let (v, cfg) = build(&ctx, &[&app, &t1, &t2], &[]);
    assert_eq!(closure_layers(&v, &cfg).len(), 6);
}

#[test]
fn bad_closures_are_refused() {
    let ctx = TestContext::new();
    let from = fixture_layout(Variant::Oci).oci_ref();
    let out = format!("oci:{}", ctx.path("never").display());
    ctx.run([
        "build",
        "--from",
        &from,
        "--nix-closure",
        "/etc",
        "-o",
        &out,
    ])
    .failure(2)
    .stderr_contains("is not in the Nix store")
    .stderr_contains("hint:");
    ctx.run([
        "build",
        "--from",
        &from,
        "--nix-closure",
        "/nix/store/00000000000000000000000000000000-missing",
        "-o",
        &out,
    ])
    .failure(2)
    .stderr_contains("does not exist");
    // nix-store missing from PATH: exit 2, naming the package.
    let app = nix_build(ctx.root(), "v1", &salt(), "app");
    let mut cmd = ctx.cmd([
        "build",
        "--from",
        &from,
        "--nix-closure",
        &app.display().to_string(),
        "-o",
        &out,
    ]);
    cmd.env("PATH", "/nonexistent");
    support::Output::of(&mut cmd)
        .failure(2)
        .stderr_contains("nix-store is not installed")
        .stderr_contains("nix-bin");
    assert!(!ctx.path("never").exists());
}
