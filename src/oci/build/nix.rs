//! Nix closures as image layers, as nix2container and nixpkgs' dockerTools do.
//!
//! The closure of the given store paths (`nix-store -qR`) becomes one layer per
//! store path, each holding exactly `/nix/store/<path>`, so a path's layer digest
//! depends on that path alone: rebuilding after one derivation changed pushes only
//! the layers of what changed. When the closure has more paths than the layer
//! budget, the most popular paths (those most of the closure depends on) keep
//! their own layers and the rest share the last one, as dockerTools' popularity
//! contest does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const STORE_DIR: &str = "/nix/store";
/// dockerTools' default; registries and runtimes break past ~125 layers.
pub const DEFAULT_MAX_LAYERS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum NixError {
    #[error("{0} is not in the Nix store (/nix/store)")]
    OutsideStore(PathBuf),
    #[error("store path {0} does not exist")]
    Missing(PathBuf),
    #[error("nix-store is not installed (needed to read a Nix closure)")]
    NoNixStore(#[source] std::io::Error),
    #[error("nix-store {args} failed: {stderr}")]
    Query { args: String, stderr: String },
    #[error("a closure needs at least one layer")]
    NoLayers,
}

/// The store path (`/nix/store/<hash>-<name>`) that `p` is or lies in, following
/// symlinks such as nix-build's `result`.
pub fn store_path_of(p: &Path) -> Result<PathBuf, NixError> {
    let resolved = std::fs::canonicalize(p).map_err(|_| {
        if p.starts_with(STORE_DIR) {
            NixError::Missing(p.to_path_buf())
        } else {
            NixError::OutsideStore(p.to_path_buf())
        }
    })?;
    let rest = resolved
        .strip_prefix(STORE_DIR)
        .map_err(|_| NixError::OutsideStore(p.to_path_buf()))?;
    let first = rest
        .components()
        .next()
        .ok_or_else(|| NixError::OutsideStore(p.to_path_buf()))?;
    Ok(Path::new(STORE_DIR).join(first))
}

/// A closure with its reference graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    /// Every store path of the closure, sorted.
    pub paths: Vec<PathBuf>,
    /// path -> the paths it references directly (itself excluded).
    pub references: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

impl Closure {
    /// Queries Nix for the closure of `roots` (each a store path or a link into one).
    pub fn of(roots: &[PathBuf]) -> Result<Self, NixError> {
        let roots = roots
            .iter()
            .map(|r| store_path_of(r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut paths: Vec<PathBuf> = nix_store(&["-qR"], &roots)?
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect();
        paths.sort();
        paths.dedup();
        let graph = nix_store(&["-q", "--graph"], &roots)?;
        Ok(Closure {
            references: parse_graph(&graph, &paths),
            paths,
        })
    }

    /// How many paths of the closure depend on each path, directly or not.
    pub fn popularity(&self) -> HashMap<&Path, usize> {
        // referrers: the reverse edges.
        let mut referrers: HashMap<&Path, Vec<&Path>> = HashMap::new();
        for (from, tos) in &self.references {
            for to in tos {
                referrers
                    .entry(to.as_path())
                    .or_default()
                    .push(from.as_path());
            }
        }
        self.paths
            .iter()
            .map(|p| {
                let mut seen: BTreeSet<&Path> = BTreeSet::new();
                let mut stack = vec![p.as_path()];
                while let Some(x) = stack.pop() {
                    for r in referrers.get(x).into_iter().flatten() {
                        if seen.insert(r) {
                            stack.push(r);
                        }
                    }
                }
                seen.remove(p.as_path());
                (p.as_path(), seen.len())
            })
            .collect()
    }

    /// The layers: most popular first (ties by path), one path each, the least
    /// popular merged into the last when there are more paths than `max_layers`.
    pub fn layers(&self, max_layers: usize) -> Result<Vec<Vec<PathBuf>>, NixError> {
        if max_layers == 0 {
            return Err(NixError::NoLayers);
        }
        let pop = self.popularity();
        let mut order: Vec<&PathBuf> = self.paths.iter().collect();
        order.sort_by(|a, b| pop[b.as_path()].cmp(&pop[a.as_path()]).then(a.cmp(b)));
        let mut layers: Vec<Vec<PathBuf>> = Vec::new();
        for (i, p) in order.into_iter().enumerate() {
            if i < max_layers {
                layers.push(vec![p.clone()]);
            } else {
                layers.last_mut().expect("max_layers >= 1").push(p.clone());
            }
        }
        for l in &mut layers {
            l.sort();
        }
        Ok(layers)
    }
}

impl Closure {
    /// Reads a closure from files in `nix-store --register-validity` format (what a
    /// derivation's `exportReferencesGraph` writes: per path, the path, its deriver,
    /// the number of references, then the references). For builds inside a Nix
    /// sandbox, where `nix-store` cannot query the store database.
    pub fn from_registration(texts: &[String]) -> Result<Self, NixError> {
        let bad = |detail: String| NixError::Query {
            args: "(exportReferencesGraph file)".into(),
            stderr: detail,
        };
        let mut references: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
        for text in texts {
            let mut lines = text.lines();
            while let Some(path) = lines.next() {
                if path.is_empty() {
                    continue;
                }
                let path = PathBuf::from(path);
                if !path.starts_with(STORE_DIR) {
                    return Err(bad(format!("{} is not a store path", path.display())));
                }
                let _deriver = lines
                    .next()
                    .ok_or_else(|| bad("truncated: no deriver line".into()))?;
                let n: usize = lines
                    .next()
                    .and_then(|l| l.trim().parse().ok())
                    .ok_or_else(|| bad(format!("no reference count after {}", path.display())))?;
                let entry = references.entry(path.clone()).or_default();
                for _ in 0..n {
                    let r = lines
                        .next()
                        .ok_or_else(|| bad("truncated reference list".into()))?;
                    if Path::new(r) != path {
                        entry.insert(PathBuf::from(r));
                    }
                }
            }
        }
        Ok(Closure {
            paths: references.keys().cloned().collect(),
            references,
        })
    }
}

fn nix_store(args: &[&str], roots: &[PathBuf]) -> Result<String, NixError> {
    let out = Command::new("nix-store")
        .args(args)
        .args(roots)
        .output()
        .map_err(NixError::NoNixStore)?;
    if !out.status.success() {
        let stderr: String = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("build-users-group"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(NixError::Query {
            args: args.join(" "),
            stderr,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Reads `nix-store -q --graph` (dot): `"dep" -> "referrer"` edges between
/// `<hash>-<name>` nodes. Returns referrer -> its references.
fn parse_graph(dot: &str, paths: &[PathBuf]) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut refs: BTreeMap<PathBuf, BTreeSet<PathBuf>> =
        paths.iter().map(|p| (p.clone(), BTreeSet::new())).collect();
    for line in dot.lines() {
        let Some((left, right)) = line.split_once(" -> ") else {
            continue;
        };
        let name = |s: &str| {
            s.trim()
                .split('"')
                .nth(1)
                .map(|n| Path::new(STORE_DIR).join(n))
        };
        let (Some(dep), Some(referrer)) = (name(left), name(right)) else {
            continue;
        };
        if dep != referrer
            && let Some(set) = refs.get_mut(&referrer)
        {
            set.insert(dep);
        }
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        Path::new(STORE_DIR).join(s)
    }

    /// app -> lib -> libc, app -> data, tool -> libc
    fn closure() -> Closure {
        let paths = vec![
            p("a-app"),
            p("c-libc"),
            p("d-data"),
            p("l-lib"),
            p("t-tool"),
        ];
        let dot = r#"digraph G {
"c-libc" -> "l-lib" [color = "black"];
"l-lib" -> "a-app" [color = "red"];
"d-data" -> "a-app" [color = "black"];
"c-libc" -> "t-tool" [color = "black"];
"c-libc" -> "c-libc" [color = "black"];
"a-app" [label = "app"];
}"#;
        Closure {
            references: parse_graph(dot, &paths),
            paths,
        }
    }

    #[test]
    fn graph_and_popularity() {
        let c = closure();
        assert_eq!(c.references[&p("a-app")], [p("d-data"), p("l-lib")].into());
        assert!(
            c.references[&p("c-libc")].is_empty(),
            "self-references ignored"
        );
        let pop = c.popularity();
        assert_eq!(pop[p("c-libc").as_path()], 3); // lib, app (via lib), tool
        assert_eq!(pop[p("l-lib").as_path()], 1);
        assert_eq!(pop[p("a-app").as_path()], 0);
    }

    #[test]
    fn layers_by_popularity_with_a_budget() {
        let c = closure();
        let all = c.layers(100).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all[0], vec![p("c-libc")], "most popular first");
        let two = c.layers(2).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[0], vec![p("c-libc")]);
        assert_eq!(two[1].len(), 4, "the rest share the last layer: {two:?}");
        assert!(matches!(c.layers(0), Err(NixError::NoLayers)));
    }

    #[test]
    fn registration_files_give_the_same_closure() {
        let text = "/nix/store/a-app\n\n3\n/nix/store/a-app\n/nix/store/l-lib\n/nix/store/d-data\n\
                    /nix/store/l-lib\n/nix/store/x.drv\n1\n/nix/store/c-libc\n\
                    /nix/store/d-data\n\n0\n/nix/store/c-libc\n\n0\n";
        let tool = "/nix/store/t-tool\n\n1\n/nix/store/c-libc\n/nix/store/c-libc\n\n0\n";
        let c = Closure::from_registration(&[text.to_string(), tool.to_string()]).unwrap();
        assert_eq!(c, closure());
        assert!(Closure::from_registration(&["/etc/x\n\n0\n".into()]).is_err());
        assert!(Closure::from_registration(&["/nix/store/a\n\n2\n/nix/store/b\n".into()]).is_err());
    }

    #[test]
    fn store_paths_are_checked() {
        assert!(matches!(
            store_path_of(Path::new("/etc/passwd")),
            Err(NixError::OutsideStore(_))
        ));
        assert!(matches!(
            store_path_of(Path::new(
                "/nix/store/00000000000000000000000000000000-nothing"
            )),
            Err(NixError::Missing(_))
        ));
    }
}
