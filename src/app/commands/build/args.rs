//! `ocibench build` arguments, resolved once into validated `BuildSettings`, so
//! every bad input is refused (exit 2) before anything is pulled or written.

use std::path::PathBuf;

use crate::app::args::layer_created_by;
use crate::app::explain::UserError;
use ocibench::oci::build::{BuildSpec, LayerSpec, NixSpec};
use ocibench::oci::compress::LayerCompression;
use ocibench::oci::image_config::{self as config, ConfigEdit};
use ocibench::oci::location::Destination;
use ocibench::oci::location::ImageLocation;
use ocibench::oci::manifest::Platform;
use ocibench::oci::publish::Target;
use ocibench::oci::reference::TlsMode;

#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// Base image (any input transport), or `scratch` for an empty base
    #[arg(long, value_name = "IMAGE|scratch")]
    pub from: String,
    /// Add SRC (a directory or a file) at DEST [default DEST: /NAME-OF-SRC]; one layer each, in order
    #[arg(long = "layer", value_name = "SRC[:DEST]")]
    pub layers: Vec<String>,
    /// Add a Nix store path's closure (nix-store -qR), one layer per store path
    #[arg(long = "nix-closure", value_name = "STORE_PATH")]
    pub nix_closures: Vec<PathBuf>,
    /// Read the closure from exportReferencesGraph files instead of asking nix-store (inside a Nix build)
    #[arg(long = "nix-graph", value_name = "FILE", requires = "nix_closures")]
    pub nix_graphs: Vec<PathBuf>,
    /// At most this many layers for the Nix closure; the least popular paths share the last
    #[arg(long, value_name = "N", default_value_t = ocibench::oci::build::nix::DEFAULT_MAX_LAYERS)]
    pub max_layers: usize,
    /// Entrypoint: a JSON array ('["python3","/app/server.py"]') or a single word; '' clears it
    #[arg(long, value_name = "JSON|WORD")]
    pub entrypoint: Option<String>,
    /// Default arguments: a JSON array or a single word; '' clears them
    #[arg(long, value_name = "JSON|WORD")]
    pub cmd: Option<String>,
    /// Environment variable, merged by key into the base's
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory (absolute)
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Port to expose: PORT or PORT/tcp|udp|sctp
    #[arg(long = "expose", value_name = "PORT[/PROTO]")]
    pub expose: Vec<String>,
    /// Label, merged by key into the base's
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// User (name or UID[:GID]) the container runs as
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Volume (an absolute path) the container mounts, merged into the base's
    #[arg(long = "volume", value_name = "PATH")]
    pub volumes: Vec<String>,
    /// Signal that stops the container: SIGTERM, TERM, SIGRTMIN+3 or a number
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Healthcheck as Docker's HealthConfig JSON ('{"Test":["CMD-SHELL","curl -f http://localhost/"],"Interval":30000000000}', durations in ns)
    #[arg(long, value_name = "JSON")]
    pub healthcheck: Option<String>,
    /// Annotation on the image manifest; `index:K=V` for the index of a multi-platform build
    #[arg(long = "annotation", value_name = "[index:|manifest:]K=V")]
    pub annotations: Vec<String>,
    /// Platform of the base to choose (and of a scratch image) [default: the host's]; a comma list (linux/amd64,linux/arm64) builds one image per platform and an index of them
    #[arg(long, value_name = "OS/ARCH[/VARIANT][,...]")]
    pub platform: Option<String>,
    /// Compression of the new layers: gzip (level 0-9, default 6) or zstd (level 1-22, default 3); zstd makes an OCI image
    #[arg(long, value_name = "gzip|zstd[:LEVEL]", default_value = "gzip")]
    pub compression: String,
    /// Where to write the image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
    #[arg(long = "output", short = 'o', value_name = "DEST", required = true)]
    pub outputs: Vec<String>,
    #[command(flatten)]
    pub tls: crate::app::args::TlsArgs,
    #[command(flatten)]
    pub creds: crate::app::args::CopyCredsArgs,
    #[command(flatten)]
    pub net: crate::app::args::NetArgs,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

/// `ocibench build`'s flags, checked: what to build, where to write it.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// What to build; `config.expose` normalised to `8080/tcp`.
    pub spec: BuildSpec,
    pub outputs: Vec<Target>,
    pub tls: TlsMode,
    pub json: bool,
}

impl BuildSettings {
    pub fn from_args(a: &BuildArgs) -> Result<Self, UserError> {
        let from = if a.from == "scratch" {
            None
        } else {
            Some(a.from.parse::<ImageLocation>().map_err(|e| {
                UserError::usage(format!("--from: {e}"))
                    .with_hint("use an image (REPO:TAG, oci:DIR[:TAG], ...) or `scratch`")
            })?)
        };
        let layers = a
            .layers
            .iter()
            .map(|s| parse_layer(s))
            .collect::<Result<Vec<_>, _>>()?;
        let env = a
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, _)) if valid_env_key(k) => Ok(e.clone()),
                _ => Err(UserError::usage(format!("--env {e:?}: expected KEY=VALUE"))
                    .with_hint("for example --env PORT=8080")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let labels = a
            .labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(UserError::usage(format!(
                    "--label {l:?}: expected KEY=VALUE"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut annotations = Vec::new();
        let mut index_annotations = Vec::new();
        for s in &a.annotations {
            let (level, kv) = parse_annotation(s)?;
            match level {
                AnnotationLevel::Manifest => annotations.push(kv),
                AnnotationLevel::Index => index_annotations.push(kv),
            }
        }
        let expose = a
            .expose
            .iter()
            .map(|p| parse_port(p))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(w) = &a.workdir
            && !w.starts_with('/')
        {
            return Err(UserError::usage(format!(
                "--workdir {w:?} must be an absolute path"
            )));
        }
        if let Some(v) = a.volumes.iter().find(|v| !v.starts_with('/')) {
            return Err(
                UserError::usage(format!("--volume {v:?} must be an absolute path"))
                    .with_hint("for example --volume /data"),
            );
        }
        let stop_signal = a
            .stop_signal
            .as_deref()
            .map(|s| config::normalize_stop_signal(s).map_err(|e| config_usage("--stop-signal", e)))
            .transpose()?;
        let healthcheck = a
            .healthcheck
            .as_deref()
            .map(|h| config::parse_healthcheck(h).map_err(|e| config_usage("--healthcheck", e)))
            .transpose()?;
        let platforms = parse_platforms(a.platform.as_deref())?;
        let outputs = parse_outputs(&a.outputs)?;
        if platforms.len() > 1
            && let Some(o) = outputs
                .iter()
                .find(|o| matches!(o, Target::File(Destination::DockerArchive { .. })))
        {
            return Err(UserError::usage(format!(
                "--output {o}: a docker-archive holds one image, not the index of a {}-platform build",
                platforms.len()
            ))
            .with_hint(
                "pick one --platform for a docker-archive, or write the index to oci:DIR[:TAG], oci-archive:FILE[:TAG] or a registry",
            ));
        }
        if a.max_layers == 0 {
            return Err(UserError::usage("--max-layers must be at least 1"));
        }
        for p in &a.nix_closures {
            ocibench::oci::build::nix::store_path_of(p).map_err(|e| {
                let hint = crate::app::explain::Explain::hint(&e).unwrap_or_default();
                UserError::usage(format!("--nix-closure: {e}")).with_hint(hint)
            })?;
        }
        let config = ConfigEdit {
            entrypoint: a
                .entrypoint
                .as_deref()
                .map(|s| parse_argv("--entrypoint", s))
                .transpose()?,
            cmd: a
                .cmd
                .as_deref()
                .map(|s| parse_argv("--cmd", s))
                .transpose()?,
            env,
            workdir: a.workdir.clone(),
            expose,
            labels,
            user: a.user.clone(),
            volumes: a.volumes.clone(),
            stop_signal,
            healthcheck,
            created_epoch: 0,
        };
        Ok(BuildSettings {
            spec: BuildSpec {
                from,
                platforms,
                platform_required: a.platform.is_some(),
                layers,
                nix: NixSpec {
                    closures: a.nix_closures.clone(),
                    graphs: a.nix_graphs.clone(),
                    max_layers: a.max_layers,
                    created_by: "ocibench build --nix-closure".into(),
                },
                config,
                index_annotations,
                annotations,
                compression: parse_compression(&a.compression)?,
            },
            outputs,
            tls: a.tls.mode(),
            json: a.json,
        })
    }
}

/// `--platform`: one platform or a comma list of distinct ones; the host's when absent.
fn parse_platforms(raw: Option<&str>) -> Result<Vec<Platform>, UserError> {
    let Some(raw) = raw else {
        return Ok(vec![Platform::host()]);
    };
    let mut platforms: Vec<Platform> = Vec::new();
    for p in raw.split(',') {
        let platform = crate::app::args::parse_platform(Some(p.trim())).map_err(|e| {
            e.with_hint(
                "use --platform OS/ARCH[/VARIANT][,...], e.g. --platform linux/amd64,linux/arm64",
            )
        })?;
        if platforms.contains(&platform) {
            return Err(
                UserError::usage(format!("--platform {raw:?} names {platform} twice"))
                    .with_hint("name each platform once"),
            );
        }
        platforms.push(platform);
    }
    Ok(platforms)
}

/// A config error on one flag, with the library's hint (usage, exit 2).
fn config_usage(flag: &str, e: config::ConfigError) -> UserError {
    let hint = crate::app::explain::Explain::hint(&e).unwrap_or_default();
    UserError::usage(format!("{flag}: {e}")).with_hint(hint)
}

/// Where an `--annotation` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationLevel {
    Manifest,
    Index,
}

/// `[index:|manifest:]KEY=VALUE`, as `docker buildx build --annotation` spells it.
/// A key may itself hold `:` (`com.example:x=1`): only a known level word before
/// the first `:` is a level. buildx's descriptor levels and `[platform]`
/// qualifiers are refused rather than silently applied to the wrong document.
pub fn parse_annotation(s: &str) -> Result<(AnnotationLevel, (String, String)), UserError> {
    let bad = |why: &str| {
        UserError::usage(format!("--annotation {s:?}: {why}"))
            .with_hint("use --annotation KEY=VALUE (the image manifest) or --annotation index:KEY=VALUE (the index of a multi-platform build)")
    };
    let Some((head, value)) = s.split_once('=') else {
        return Err(bad("expected KEY=VALUE"));
    };
    let (level, key) = match head.split_once(':') {
        Some(("index", k)) => (AnnotationLevel::Index, k),
        Some(("manifest", k)) => (AnnotationLevel::Manifest, k),
        Some((l, _)) if l.starts_with("manifest") || l.starts_with("index") => {
            return Err(bad(&format!(
                "the level {l:?} is not supported (only index: and manifest:)"
            )));
        }
        _ => (AnnotationLevel::Manifest, head),
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(bad("the key is empty or holds white space"));
    }
    Ok((level, (key.to_string(), value.to_string())))
}

/// `gzip`, `gzip:LEVEL`, `zstd`, `zstd:LEVEL` (the level in the format's range).
pub fn parse_compression(s: &str) -> Result<LayerCompression, UserError> {
    let bad = |why: String| {
        UserError::usage(format!("--compression {s:?}: {why}")).with_hint(
            "use gzip, gzip:0 to gzip:9, zstd, or zstd:1 to zstd:22 (e.g. --compression zstd:19)",
        )
    };
    let (name, level) = match s.split_once(':') {
        Some((name, level)) => (name, Some(level)),
        None => (s, None),
    };
    let compression = match (name, level) {
        ("gzip", None) => LayerCompression::default(),
        ("zstd", None) => LayerCompression::zstd(),
        ("gzip", Some(l)) => LayerCompression::Gzip {
            level: l
                .parse()
                .map_err(|_| bad(format!("{l:?} is not a level")))?,
        },
        ("zstd", Some(l)) => LayerCompression::Zstd {
            level: l
                .parse()
                .map_err(|_| bad(format!("{l:?} is not a level")))?,
        },
        _ => {
            return Err(bad(
                "unknown compression (ocibench writes gzip or zstd)".into()
            ));
        }
    };
    if !compression.level_in_range() {
        let range = match compression {
            LayerCompression::Gzip { .. } => "0 to 9",
            LayerCompression::Zstd { .. } => "1 to 22",
        };
        return Err(bad(format!("the {name} level must be {range}")));
    }
    Ok(compression)
}

fn valid_env_key(k: &str) -> bool {
    !k.is_empty() && !k.contains(char::is_whitespace)
}

/// `SRC[:DEST]` (see `oci::layer::split_spec`), SRC checked, DEST normalised.
pub fn parse_layer(s: &str) -> Result<LayerSpec, UserError> {
    let (src, dest) = ocibench::oci::build::layer::split_spec(s);
    if src.is_empty() {
        return Err(UserError::usage(format!("--layer {s:?}: no source path"))
            .with_hint("use --layer SRC[:DEST], e.g. --layer ./app:/app"));
    }
    let src_path = PathBuf::from(src);
    let meta = std::fs::symlink_metadata(&src_path).map_err(|e| {
        UserError::usage(format!("--layer {s:?}: cannot read {src}: {e}"))
            .with_hint("the source must be an existing directory or file")
    })?;
    let dest = match dest {
        Some(d) => normalise_dest(d).ok_or_else(|| {
            UserError::usage(format!(
                "--layer {s:?}: destination {d:?} must be an absolute path without '..'"
            ))
        })?,
        None => {
            let name = src_path
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            if name.is_empty() {
                return Err(UserError::usage(format!(
                    "--layer {s:?}: cannot derive a destination"
                ))
                .with_hint("name one: --layer SRC:/DEST"));
            }
            format!("/{name}")
        }
    };
    if meta.is_file() && dest == "/" {
        return Err(UserError::usage(format!(
            "--layer {s:?}: {src} is a file; DEST must name the file, not /"
        )));
    }
    Ok(LayerSpec {
        src: src_path,
        created_by: layer_created_by(&dest),
        dest,
    })
}

/// `/a//b/` -> `/a/b`; `None` for relative paths or `..`.
fn normalise_dest(d: &str) -> Option<String> {
    if !d.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for c in d.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// A JSON array of strings (exec form) or a single word; an empty string clears.
pub fn parse_argv(flag: &str, s: &str) -> Result<Vec<String>, UserError> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    config::parse_exec_form(s).map_err(|e| {
        let words: Vec<&str> = s.split_whitespace().collect();
        UserError::usage(format!("{flag}: {e}")).with_hint(format!(
            "write it as a JSON array: {flag} '{}'",
            serde_json::to_string(&words).unwrap_or_default()
        ))
    })
}

/// `8080` -> `8080/tcp`; validates the number and protocol.
pub fn parse_port(p: &str) -> Result<String, UserError> {
    config::normalize_port(p).map_err(|e| {
        UserError::usage(format!("--expose: {e}"))
            .with_hint("use PORT or PORT/PROTO with PORT in 1..65535 and PROTO tcp, udp or sctp, e.g. --expose 8080")
    })
}

/// Output destinations, no two writing the same place.
fn parse_outputs(raw: &[String]) -> Result<Vec<Target>, UserError> {
    const FILE_TRANSPORTS: [&str; 3] = ["oci:", "oci-archive:", "docker-archive:"];
    let hint = "outputs are oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or docker://REGISTRY/REPO:TAG";
    let mut out: Vec<Target> = Vec::new();
    for o in raw {
        let parsed = if FILE_TRANSPORTS.iter().any(|t| o.starts_with(t)) {
            Destination::parse(o)
                .map(Target::File)
                .map_err(|e| UserError::usage(format!("--output: {e}")).with_hint(hint))?
        } else {
            match o.parse::<ImageLocation>() {
                Ok(ImageLocation::Registry(r)) => Target::Registry(r),
                Ok(other) => unreachable!("file transports are handled above: {other}"),
                Err(e) => {
                    return Err(UserError::usage(format!("--output {o:?}: {e}")).with_hint(hint));
                }
            }
        };
        let clash = out.iter().any(|prev| match (prev, &parsed) {
            (Target::File(a), Target::File(b)) => a.same_target(b),
            (Target::Registry(a), Target::Registry(b)) => a == b,
            _ => false,
        });
        if clash {
            return Err(
                UserError::usage(format!("--output {o:?} is given twice")).with_hint(
                    "each output must be a different file, directory tag or registry reference",
                ),
            );
        }
        out.push(parsed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_specs() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir(&app).unwrap();
        let a = app.to_str().unwrap();
        assert_eq!(
            parse_layer(&format!("{a}:/srv//x/")).unwrap().dest,
            "/srv/x"
        );
        assert_eq!(parse_layer(a).unwrap().dest, "/app");
        assert!(parse_layer(&format!("{a}:/a/../b")).is_err());
        assert!(parse_layer("/definitely/missing:/x").is_err());
        let f = dir.path().join("f.txt");
        std::fs::write(&f, "x").unwrap();
        assert!(parse_layer(&format!("{}:/", f.display())).is_err());
        assert_eq!(
            parse_layer(&format!("{}:/etc/f", f.display()))
                .unwrap()
                .dest,
            "/etc/f"
        );
    }

    #[test]
    fn compression_forms() {
        assert_eq!(
            parse_compression("gzip").unwrap(),
            LayerCompression::Gzip { level: 6 }
        );
        assert_eq!(
            parse_compression("gzip:9").unwrap(),
            LayerCompression::Gzip { level: 9 }
        );
        assert_eq!(
            parse_compression("zstd").unwrap(),
            LayerCompression::Zstd { level: 3 }
        );
        assert_eq!(
            parse_compression("zstd:19").unwrap(),
            LayerCompression::Zstd { level: 19 }
        );
        for (bad, why) in [
            ("zstd:0", "the zstd level must be 1 to 22"),
            ("zstd:23", "the zstd level must be 1 to 22"),
            ("gzip:10", "the gzip level must be 0 to 9"),
            ("zstd:-1", "the zstd level must be 1 to 22"),
            ("zstd:max", "\"max\" is not a level"),
            ("xz", "unknown compression (ocibench writes gzip or zstd)"),
            ("zstd:chunked", "\"chunked\" is not a level"),
        ] {
            let err = parse_compression(bad).unwrap_err();
            assert_eq!(err.to_string(), format!("--compression {bad:?}: {why}"));
        }
    }

    #[test]
    fn argv_forms() {
        assert_eq!(
            parse_argv("--cmd", r#"["a","b c"]"#).unwrap(),
            vec!["a", "b c"]
        );
        assert_eq!(parse_argv("--cmd", "python3").unwrap(), vec!["python3"]);
        assert!(parse_argv("--cmd", "").unwrap().is_empty());
        let e = parse_argv("--cmd", "python3 -m http.server").unwrap_err();
        assert!(
            e.hint
                .unwrap()
                .contains(r#"["python3","-m","http.server"]"#)
        );
        assert!(parse_argv("--cmd", "[1,2]").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("8080").unwrap(), "8080/tcp");
        assert_eq!(parse_port("53/UDP").unwrap(), "53/udp");
        for bad in ["abc", "0", "70000", "80/icmp", ""] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn platform_lists() {
        let host = parse_platforms(None).unwrap();
        assert_eq!(host, vec![Platform::host()]);
        let two = parse_platforms(Some("linux/amd64, linux/arm64/v8")).unwrap();
        assert_eq!(
            two,
            vec![
                Platform::new("linux", "amd64", None),
                Platform::new("linux", "arm64", Some("v8"))
            ]
        );
        let twice = parse_platforms(Some("linux/amd64,linux/amd64")).unwrap_err();
        assert!(
            twice.to_string().contains("names linux/amd64 twice"),
            "{twice}"
        );
        let bad = parse_platforms(Some("linux/amd64,")).unwrap_err();
        assert!(bad.hint.unwrap().contains("--platform OS/ARCH"));
    }

    #[test]
    fn duplicate_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.tar");
        let same = vec![
            format!("oci-archive:{}", f.display()),
            format!("docker-archive:{}/./a.tar", dir.path().display()),
        ];
        assert!(parse_outputs(&same).is_err());
        let two = vec![
            format!("oci:{}/l:a", dir.path().display()),
            format!("oci:{}/l:b", dir.path().display()),
        ];
        assert!(
            parse_outputs(&two).is_ok(),
            "two tags in one layout are fine"
        );
    }
}

#[cfg(test)]
mod annotation_tests {
    use super::*;

    #[test]
    fn annotations_by_level_as_buildx_spells_them() {
        let p = |s: &str| parse_annotation(s).map_err(|e| e.to_string());
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            p("a.b=c=d"),
            Ok((AnnotationLevel::Manifest, kv("a.b", "c=d")))
        );
        assert_eq!(
            p("manifest:k="),
            Ok((AnnotationLevel::Manifest, kv("k", "")))
        );
        assert_eq!(p("index:k=v"), Ok((AnnotationLevel::Index, kv("k", "v"))));
        // A key with a ':' of its own is not a level.
        assert_eq!(
            p("com.example:x=1"),
            Ok((AnnotationLevel::Manifest, kv("com.example:x", "1")))
        );
        for bad in [
            "novalue",
            "=v",
            "index:=v",
            "manifest-descriptor:k=v",
            "index[linux/amd64]:k=v",
            "a b=c",
        ] {
            assert!(p(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            p("manifest-descriptor:k=v")
                .unwrap_err()
                .contains("the level \"manifest-descriptor\" is not supported"),
        );
    }
}
