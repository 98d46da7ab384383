//! The real `flake.nix`, evaluated and built offline: these machines cannot fetch
//! nixpkgs, so `nixpkgs` is overridden with the stand-in under `tests/nix/` (its
//! busybox and the ocibench binary cargo built), and `lib.buildImage` runs in Nix's
//! build sandbox, where only `--nix-graph` can give it the closure. The image it
//! makes is then loaded (by its own `copyToPodman`) and run with podman.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::podman::{LoadedImage, ULIMITS, podman};
use crate::support::tools::{command, require, run, run_stdout, skopeo};
use crate::support::{Registry, TestContext, Variant, fixture_layout};

/// The repository: the flake and the stand-in's sources.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A flake source and the completed stand-in, both copies in the test's directory.
struct Flake {
    src: PathBuf,
    standin: PathBuf,
}

impl Flake {
    /// Copies what the flake reads (flake.nix, nix/, Cargo.toml, Cargo.lock) so the
    /// test needs neither git nor a clean tree, and completes the stand-in with
    /// tests/nix/prepare-standin.sh.
    fn prepare(ctx: &TestContext) -> Flake {
        require("busybox", "busybox-static");
        require("strip", "binutils (build-essential)");
        let src = ctx.path("flake-src");
        std::fs::create_dir_all(src.join("nix")).unwrap();
        for f in ["flake.nix", "Cargo.toml", "Cargo.lock"] {
            std::fs::copy(repo().join(f), src.join(f)).unwrap();
        }
        for entry in std::fs::read_dir(repo().join("nix")).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, src.join("nix").join(p.file_name().unwrap())).unwrap();
        }
        let standin = ctx.path("nixpkgs-standin");
        run(command("bash", "bash")
            .arg(repo().join("tests/nix/prepare-standin.sh"))
            .arg(&standin)
            .arg(env!("CARGO_BIN_EXE_ocibench")));
        Flake { src, standin }
    }

    /// `nix build` of `flake#attr`, SANDBOXED; returns the store path `link` points at.
    fn build(&self, flake: &Path, attr: &str, link: &Path) -> PathBuf {
        run(nix()
            .arg("build")
            .args(SANDBOXED)
            .args(["--no-write-lock-file", "--override-input", "nixpkgs"])
            .arg(format!("path:{}", self.standin.display()))
            .arg("--out-link")
            .arg(link)
            .arg(format!("path:{}#{attr}", flake.display())));
        std::fs::canonicalize(link).unwrap()
    }
}

/// Offline, no binary cache, the sandbox on, and no build users (root here has no
/// nixbld group; Nix then builds as root, still in the sandbox's namespaces).
const SANDBOXED: [&str; 10] = [
    "--offline",
    "--option",
    "substituters",
    "",
    "--option",
    "sandbox",
    "true",
    "--option",
    "build-users-group",
    "",
];

fn nix() -> Command {
    let mut c = command("nix", "nix-bin");
    c.args(["--extra-experimental-features", "nix-command flakes"]);
    c
}

#[test]
fn flake_check_builds_in_the_sandbox_and_its_image_runs_under_podman() {
    let ctx = TestContext::new();
    let flake = Flake::prepare(&ctx);
    let nix_store = require("nix-store", "nix-bin");
    assert!(nix_store.starts_with("/usr"), "{}", nix_store.display());

    // The options below do give a sandbox: a builder cannot see the host's nix-store.
    let probe = flake.standin.join("probe.nix");
    std::fs::write(
        &probe,
        format!(
            r#"derivation {{
              name = "sandbox-probe-{}";
              system = builtins.currentSystem;
              builder = "${{./busybox}}/bin/sh";
              args = [ "-c" "if [ -e {} ]; then exit 1; fi; echo sandboxed > $out" ];
            }}"#,
            std::process::id(),
            nix_store.display()
        ),
    )
    .unwrap();
    let probed = ctx.path("probe");
    run(nix()
        .args(["build", "--file"])
        .arg(&probe)
        .args(SANDBOXED)
        .arg("--out-link")
        .arg(&probed));
    assert_eq!(std::fs::read_to_string(&probed).unwrap(), "sandboxed\n");

    // The check: lib.buildImage in the sandbox, then `ocibench inspect` in a second
    // derivation that fails unless the config is exactly the one given and there is
    // one layer per store path. Its output is the image's config blob.
    let check = flake.build(
        &flake.src,
        "checks.x86_64-linux.buildImage-greet",
        &ctx.path("check"),
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&check).unwrap()).unwrap();
    let image = flake.build(
        &flake.src,
        "checks.x86_64-linux.buildImage-greet-image",
        &ctx.path("image"),
    );
    let greet = config["config"]["Entrypoint"][0]
        .as_str()
        .unwrap()
        .trim_end_matches("/bin/greet")
        .to_string();
    assert!(
        greet.starts_with("/nix/store/") && greet.ends_with("-greet"),
        "{greet}"
    );
    assert_eq!(
        config["config"],
        serde_json::json!({
            "Entrypoint": [format!("{greet}/bin/greet")],
            "Cmd": ["--loud"],
            "Env": ["GREETING=hello", format!("PATH={greet}/bin")],
            "WorkingDir": "/tmp",
            "User": "1000:1000",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "greet"},
            "Volumes": {"/data": {}},
            "StopSignal": "SIGINT",
            "Healthcheck": {"Test": ["CMD", format!("{greet}/bin/greet")], "Interval": 30_000_000_000u64, "Retries": 3},
        })
    );
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");

    // Layers: one per store path, the most popular first (the data file and the
    // shell, both used by the script, ties by store path name: the hash, which the
    // stand-in's salt makes new each run), the script last.
    let paths: Vec<String> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let by = h["created_by"].as_str().unwrap();
            by.strip_prefix("ocibench build --nix-closure: ")
                .unwrap()
                .to_string()
        })
        .collect();
    let names: Vec<&str> = paths.iter().map(|p| p.split_once('-').unwrap().1).collect();
    assert!(paths[0] < paths[1], "ties in name order: {paths:?}");
    let mut tied = names[..2].to_vec();
    tied.sort();
    assert_eq!(tied, ["busybox", "greeting-data"], "{paths:?}");
    assert_eq!(names[2], "greet", "{paths:?}");
    let inspected: serde_json::Value = serde_json::from_str(&run_stdout(
        Command::new(env!("CARGO_BIN_EXE_ocibench"))
            .args(["inspect", "--quiet", "--json"])
            .arg(format!("oci-archive:{}", image.display()))
            .env("OCIBENCH_CACHE", ctx.path("cache")),
    ))
    .unwrap();
    assert_eq!(inspected["layers"].as_array().unwrap().len(), 3);
    assert_eq!(inspected["config"], config["config"]);

    // copyToPodman loads it as NAME:TAG; it runs with the config it was given.
    let loader = flake.build(
        &flake.src,
        "checks.x86_64-linux.buildImage-greet-image.copyToPodman",
        &ctx.path("copy-to-podman"),
    );
    let name = "localhost/greet:check";
    let _image = LoadedImage(name.into());
    let loaded = run_stdout(
        Command::new(loader.join("bin/copy-to-podman"))
            .env("PATH", format!("{}:/usr/bin:/bin", podman_dir().display())),
    );
    assert!(
        loaded.contains(&format!("Loaded image: {name}")),
        "{loaded}"
    );
    let said = run_stdout(podman().args(["run", "--rm"]).args(ULIMITS).arg(name));
    assert_eq!(
        said,
        "hello from a nix store path; GREETING=hello; cwd=/tmp; args=--loud\n"
    );
    let podman_config: serde_json::Value = serde_json::from_str(&run_stdout(podman().args([
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        name,
    ])))
    .unwrap();
    assert_eq!(podman_config["User"], "1000:1000");
    assert_eq!(podman_config["StopSignal"], "SIGINT");
    assert_eq!(podman_config["Volumes"], serde_json::json!({"/data": {}}));

    // copyToRegistry pushes it (ocibench push); the registry serves the same config.
    let registry = Registry::start();
    let pusher = flake.build(
        &flake.src,
        "checks.x86_64-linux.buildImage-greet-image.copyToRegistry",
        &ctx.path("copy-to-registry"),
    );
    run(Command::new(pusher.join("bin/copy-to-registry"))
        .arg(registry.docker_ref("greet:check"))
        .arg("--quiet")
        .env("OCIBENCH_CACHE", ctx.path("push-cache")));
    let pushed: serde_json::Value = serde_json::from_str(&run_stdout(
        skopeo()
            .args(["inspect", "--tls-verify=false", "--config", "--raw"])
            .arg(registry.docker_ref("greet:check")),
    ))
    .unwrap();
    assert_eq!(pushed, config);
}

/// Where podman is, for copyToPodman's PATH.
fn podman_dir() -> PathBuf {
    require("podman", "podman").parent().unwrap().to_path_buf()
}

#[test]
fn from_image_takes_a_docker_archive_plain_or_gzipped() {
    let ctx = TestContext::new();
    let flake = Flake::prepare(&ctx);
    // A flake of the test's own, using ocibench's flake as a Nix user would, onto
    // the busybox fixture as a docker-archive (what dockerTools.pullImage writes).
    let user = ctx.path("user-flake");
    std::fs::create_dir_all(&user).unwrap();
    run(Command::new(env!("CARGO_BIN_EXE_ocibench"))
        .args(["copy", "--quiet"])
        .arg(fixture_layout(Variant::Oci).oci_ref())
        .arg(format!(
            "docker-archive:{}:busybox:base",
            user.join("base.tar").display()
        ))
        .env("OCIBENCH_CACHE", ctx.path("cache")));
    // As dockerTools.buildImage writes its archives.
    let gzipped = std::fs::File::create(user.join("base.tar.gz")).unwrap();
    run(command("gzip", "gzip")
        .args(["-c", "-n"])
        .arg(user.join("base.tar"))
        .stdout(gzipped));
    std::fs::write(
        user.join("flake.nix"),
        format!(
            r#"{{
  inputs.nixpkgs.url = "path:{standin}";
  inputs.ocibench.url = "path:{src}";
  inputs.ocibench.inputs.nixpkgs.follows = "nixpkgs";
  outputs = {{ self, nixpkgs, ocibench }}:
    let
      pkgs = nixpkgs.legacyPackages.x86_64-linux;
      note = pkgs.runCommand "note" {{ }} "echo on busybox > $out";
      onto = fromImage: tag: ocibench.lib.x86_64-linux.buildImage {{
        name = "on-busybox";
        inherit fromImage tag;
        contents = [ note ];
        config.Cmd = [ "/bin/cat" "${{note}}" ];
      }};
    in {{
      plain = onto ./base.tar "plain";
      gzipped = onto ./base.tar.gz "gzipped";
    }};
}}
"#,
            standin = flake.standin.display(),
            src = flake.src.display()
        ),
    )
    .unwrap();
    for tag in ["plain", "gzipped"] {
        let image = flake.build(&user, tag, &ctx.path(tag));
        let name = format!("localhost/on-busybox:{tag}");
        let _image = LoadedImage(name.clone());
        run(podman().args(["load", "-i"]).arg(&image));
        let said = run_stdout(podman().args(["run", "--rm"]).args(ULIMITS).arg(&name));
        assert_eq!(said, "on busybox\n", "{tag}");
    }
}
