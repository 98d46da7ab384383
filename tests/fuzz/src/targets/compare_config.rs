//! `ocibench.toml`, the comparison file a user (or a repository they cloned)
//! hands to `compare`. Whatever parses is valid by the rules `compare` relies on:
//! a port, absolute HTTP paths, at least one request, connection and round,
//! named and distinct candidates, layer sources that exist. A
//! syntax error's line is a line of the file.

use ocibench::compare::config::{CompareConfig, ConfigError, expand};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = crate::scratch_root().join("compare");
    std::fs::create_dir_all(dir.join("app")).expect("create app folder");
    let env = |k: &str| (k == "SET").then(|| "value".to_string());
    match CompareConfig::parse(text, &dir, "fuzz.toml", &env) {
        Ok(c) => {
            assert!(c.app.port >= 1);
            assert!(c.app.health.starts_with('/') && c.app.path.starts_with('/'));
            assert!(c.load.requests >= 1 && c.load.concurrency >= 1 && c.load.repeats >= 1);
            assert!(!c.candidates.is_empty());
            for (i, a) in c.candidates.iter().enumerate() {
                assert!(!a.name.is_empty());
                assert!(
                    c.candidates[..i].iter().all(|b| b.name != a.name),
                    "{:?} twice",
                    a.name
                );
            }
            for l in &c.app.layers {
                assert!(
                    l.dest.starts_with('/'),
                    "layer DEST {:?} not absolute",
                    l.dest
                );
                assert!(l.src.exists());
            }
        }
        Err(ConfigError::Syntax {
            line: Some(line), ..
        }) => {
            assert!(
                line >= 1 && line <= text.lines().count().max(1) + 1,
                "line {line}"
            );
        }
        Err(_) => {}
    }
    if !text.contains("${") {
        assert_eq!(
            expand(text, &env).as_deref(),
            Ok(text),
            "expand changed plain text"
        );
    }
}
