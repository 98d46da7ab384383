//! `registries.conf` (containers-registries.conf(5), version 2 TOML), read from the
//! same files podman and skopeo read, so that a user's mirrors, rewrites, insecure
//! and blocked registries apply to ocibench without another configuration.
//!
//! What is honoured: `[[registry]]` `prefix` (also `*.example.com`) and `location`
//! (the longest matching prefix wins and is replaced by the location), `insecure`,
//! `blocked`, `mirror-by-digest-only`, and `[[registry.mirror]]` (`location`,
//! `insecure`, `pull-from-mirror`), tried in order before the location on pulls.
//! Short names keep Docker's `docker.io/library/` rule: `unqualified-search-registries`,
//! `short-name-mode` and `[aliases]` are read past, as every other key
//! containers/image does not know is. The version 1 format (`[registries.search]`)
//! is refused with a hint rather than half understood.
//!
//! Files (containers/image's `sysregistriesv2`): `$CONTAINERS_REGISTRIES_CONF` if
//! set; else `$XDG_CONFIG_HOME/containers/registries.conf` (or `~/.config/...`) if
//! it exists, with only the drop-ins of `registries.conf.d/` beside it; else
//! `/etc/containers/registries.conf`. Then the drop-ins `*.conf` of
//! `/etc/containers/registries.conf.d/` and then of the user's
//! `registries.conf.d/`, each directory in name order: a later file's
//! `[[registry]]` replaces an earlier one with the same prefix.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::RegistryError;
use super::error::BadRewrite;
use crate::oci::reference::{ImageReference, ReferenceError};

/// The system's configuration directory (containers/image's compiled-in default).
pub const SYSTEM_DIR: &str = "/etc/containers";

/// Every way reading registries.conf can fail. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum RegistriesConfError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{} is in the version 1 format ([registries.search], [registries.insecure], [registries.block]), which ocibench does not read", path.display())]
    Version1 { path: PathBuf },
    #[error("{}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
}

/// `pull-from-mirror`: which pulls a mirror serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullFromMirror {
    #[default]
    All,
    DigestOnly,
    TagOnly,
}

/// One `[[registry.mirror]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorTable {
    pub location: String,
    pub insecure: bool,
    pub pull_from_mirror: PullFromMirror,
}

/// One `[[registry]]`, checked and normalised as containers/image does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTable {
    /// `host[:port][/path]`, or `*.domain` (a wildcard prefix).
    pub prefix: String,
    /// Where the prefix's namespace really is; empty only for a wildcard prefix
    /// (no rewriting then).
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirror_by_digest_only: bool,
    pub mirrors: Vec<MirrorTable>,
    /// The file that defined it (errors name it).
    pub file: PathBuf,
}

/// One place to read (or write) an image: the rewritten reference and whether its
/// host may be spoken to without TLS checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub reference: ImageReference,
    pub insecure: bool,
    /// A `[[registry.mirror]]`, not the location.
    pub mirror: bool,
}

/// The merged configuration of every file read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    /// Sorted by prefix (containers/image's merge sorts them too).
    registries: Vec<RegistryTable>,
    /// The files read, in order.
    files: Vec<PathBuf>,
}

/// Which files make up the configuration (see the module header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFiles {
    pub main: PathBuf,
    /// A missing main file is an error only when named explicitly.
    pub main_required: bool,
    /// Drop-in directories, in the order they are read.
    pub dirs: Vec<PathBuf>,
}

impl ConfFiles {
    /// containers/image's choice of files, with the environment read through `env`
    /// and the system directory given (`SYSTEM_DIR` outside tests).
    pub fn locate(env: impl Fn(&str) -> Option<OsString>, system_dir: &Path) -> ConfFiles {
        let set = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let user_dir = set("XDG_CONFIG_HOME")
            .or_else(|| set("HOME").map(|h| h.join(".config")))
            .map(|c| c.join("containers"));
        let user_file = user_dir.as_ref().map(|d| d.join("registries.conf"));
        let user_dropins = user_dir.as_ref().map(|d| d.join("registries.conf.d"));
        if let Some(explicit) = set("CONTAINERS_REGISTRIES_CONF") {
            return ConfFiles {
                main: explicit,
                main_required: true,
                dirs: std::iter::once(system_dir.join("registries.conf.d"))
                    .chain(user_dropins)
                    .collect(),
            };
        }
        if let Some(user_file) = user_file.filter(|f| f.exists()) {
            return ConfFiles {
                main: user_file,
                main_required: false,
                dirs: user_dropins.into_iter().collect(),
            };
        }
        ConfFiles {
            main: system_dir.join("registries.conf"),
            main_required: false,
            dirs: std::iter::once(system_dir.join("registries.conf.d"))
                .chain(user_dropins)
                .collect(),
        }
    }

    /// The files to read, in order: the main one (if present) then the drop-ins.
    fn paths(&self) -> Result<Vec<PathBuf>, RegistriesConfError> {
        let mut paths = Vec::new();
        if self.main_required || self.main.exists() {
            paths.push(self.main.clone());
        }
        for dir in &self.dirs {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(RegistriesConfError::Read {
                        path: dir.clone(),
                        source,
                    });
                }
            };
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| RegistriesConfError::Read {
                    path: dir.clone(),
                    source,
                })?;
                let path = entry.path();
                // Sub-directories are not descended into; only `*.conf` counts.
                if path.extension().is_some_and(|x| x == "conf") && !path.is_dir() {
                    found.push(path);
                }
            }
            found.sort();
            paths.extend(found);
        }
        Ok(paths)
    }
}

/// A file as TOML says it (kebab-case keys; unknown keys ignored, as
/// containers/image ignores them).
#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct FileToml {
    #[serde(default)]
    registry: Vec<RegistryToml>,
    /// Version 1's `[registries.search]` and friends.
    registries: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RegistryToml {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    pull_from_mirror: String,
    #[serde(default)]
    mirror: Vec<MirrorToml>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct MirrorToml {
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    pull_from_mirror: String,
}

/// Parses one file's text: its `[[registry]]` tables, checked and normalised,
/// tables of one prefix merged (mirrors in order). `path` is for errors.
pub fn parse_file(text: &str, path: &Path) -> Result<Vec<RegistryTable>, RegistriesConfError> {
    let file: FileToml = toml::from_str(text).map_err(|e| RegistriesConfError::Syntax {
        path: path.to_path_buf(),
        line: e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        }),
        message: e.message().trim_end().to_string(),
    })?;
    if let Some(toml::Value::Table(v1)) = &file.registries
        && ["search", "insecure", "block"]
            .iter()
            .any(|k| v1.contains_key(*k))
    {
        return Err(RegistriesConfError::Version1 {
            path: path.to_path_buf(),
        });
    }
    let invalid = |detail: String| RegistriesConfError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    let mut merged: Vec<RegistryTable> = Vec::new();
    for reg in file.registry {
        let location = parse_location(&reg.location).map_err(invalid)?;
        let prefix = if reg.prefix.is_empty() {
            if location.is_empty() {
                return Err(invalid(
                    "a [[registry]] has neither prefix nor location".into(),
                ));
            }
            location.clone()
        } else {
            parse_prefix(&reg.prefix).map_err(invalid)?
        };
        if location.is_empty() && !prefix.starts_with("*.") {
            return Err(invalid(format!(
                "registry {prefix:?} has no location (only a *.domain prefix may leave it out)"
            )));
        }
        if !reg.pull_from_mirror.is_empty() {
            return Err(invalid(format!(
                "pull-from-mirror must not be set for a non-mirror registry {prefix:?}"
            )));
        }
        let mut mirrors = Vec::with_capacity(reg.mirror.len());
        for m in reg.mirror {
            let location = parse_location(&m.location).map_err(invalid)?;
            if location.is_empty() {
                return Err(invalid(format!("a mirror of {prefix:?} has no location")));
            }
            if reg.mirror_by_digest_only && !m.pull_from_mirror.is_empty() {
                return Err(invalid(format!(
                    "registry {prefix:?} sets mirror-by-digest-only and its mirror {location:?} sets pull-from-mirror: choose one"
                )));
            }
            let pull_from_mirror = match m.pull_from_mirror.as_str() {
                "" | "all" => PullFromMirror::All,
                "digest-only" => PullFromMirror::DigestOnly,
                "tag-only" => PullFromMirror::TagOnly,
                other => {
                    return Err(invalid(format!(
                        "unsupported pull-from-mirror value {other:?} for mirror {location:?} (all, digest-only or tag-only)"
                    )));
                }
            };
            mirrors.push(MirrorTable {
                location,
                insecure: m.insecure,
                pull_from_mirror,
            });
        }
        let table = RegistryTable {
            prefix,
            location,
            insecure: reg.insecure,
            blocked: reg.blocked,
            mirror_by_digest_only: reg.mirror_by_digest_only,
            mirrors,
            file: path.to_path_buf(),
        };
        // One prefix twice in a file: one registry, mirrors in order; settings
        // that disagree are an error (containers/image's rule).
        match merged.iter_mut().find(|t| t.prefix == table.prefix) {
            Some(old) => {
                let differs = [
                    ("location", old.location != table.location),
                    ("insecure", old.insecure != table.insecure),
                    ("blocked", old.blocked != table.blocked),
                ];
                if let Some((what, _)) = differs.iter().find(|(_, d)| *d) {
                    return Err(invalid(format!(
                        "registry {:?} is defined twice with different {what} settings",
                        table.prefix
                    )));
                }
                old.mirror_by_digest_only |= table.mirror_by_digest_only;
                old.mirrors.extend(table.mirrors);
            }
            None => merged.push(table),
        }
    }
    Ok(merged)
}

/// containers/image's `parseLocation`: trailing `/` dropped, no URL scheme.
fn parse_location(input: &str) -> Result<String, String> {
    let trimmed = input.trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        return Err(format!(
            "invalid location {input:?}: URI schemes are not supported (write host[:port][/path])"
        ));
    }
    Ok(trimmed.to_string())
}

/// containers/image's `parsePrefix`: `*.domain` exactly, or a location.
fn parse_prefix(input: &str) -> Result<String, String> {
    if input.starts_with("*.") {
        if input.contains(['/', '@', ':']) {
            return Err(format!(
                "invalid prefix {input:?}: a wildcard prefix is *.example.com, no port or path"
            ));
        }
        return Ok(input.to_string());
    }
    parse_location(input)
}

/// The length of `prefix`'s match at the start of `name` (a full reference
/// string), or `None`. A match must end where the name does or at `/`, `:` or
/// `@`; `*.domain` matches any subdomains of the name's host.
pub fn match_len(name: &str, prefix: &str) -> Option<usize> {
    let at_boundary = |end: usize| match name.as_bytes().get(end) {
        None | Some(b'/' | b':' | b'@') => Some(end),
        _ => None,
    };
    if let Some(domain) = prefix.strip_prefix('*') {
        // `.example.com` somewhere in the host (not past its first `/`).
        let start = name.find(domain)?;
        if name[..start].contains('/') || start == 0 {
            return None;
        }
        return at_boundary(start + domain.len());
    }
    if prefix.is_empty() || !name.starts_with(prefix) {
        return None;
    }
    at_boundary(prefix.len())
}

/// The host part of a location (`host[:port]`).
fn host_of(location: &str) -> &str {
    location.split('/').next().unwrap_or(location)
}

impl RegistriesConf {
    /// The configuration of the files containers/image would read here.
    pub fn from_env() -> Result<Self, RegistriesConfError> {
        Self::load(&ConfFiles::locate(
            |k| std::env::var_os(k),
            Path::new(SYSTEM_DIR),
        ))
    }

    /// Reads and merges `files`.
    pub fn load(files: &ConfFiles) -> Result<Self, RegistriesConfError> {
        let mut texts = Vec::new();
        for path in files.paths()? {
            let text =
                std::fs::read_to_string(&path).map_err(|source| RegistriesConfError::Read {
                    path: path.clone(),
                    source,
                })?;
            texts.push((path, text));
        }
        Self::from_texts(texts.iter().map(|(p, t)| (p.as_path(), t.as_str())))
    }

    /// Merges files given as (path, text), in order: a later file's table
    /// replaces an earlier one of the same prefix.
    pub fn from_texts<'a>(
        files: impl IntoIterator<Item = (&'a Path, &'a str)>,
    ) -> Result<Self, RegistriesConfError> {
        let mut by_prefix = BTreeMap::new();
        let mut read = Vec::new();
        for (path, text) in files {
            for table in parse_file(text, path)? {
                by_prefix.insert(table.prefix.clone(), table);
            }
            read.push(path.to_path_buf());
        }
        Ok(RegistriesConf {
            registries: by_prefix.into_values().collect(),
            files: read,
        })
    }

    /// The files read, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn registries(&self) -> &[RegistryTable] {
        &self.registries
    }

    /// The table whose prefix matches `image` longest, with the match's length.
    pub fn find(&self, image: &ImageReference) -> Option<(&RegistryTable, usize)> {
        let name = image.to_string();
        let mut best: Option<(&RegistryTable, usize)> = None;
        for t in &self.registries {
            if let Some(n) = match_len(&name, &t.prefix)
                && best.is_none_or(|(_, m)| n > m)
            {
                best = Some((t, n));
            }
        }
        best
    }

    /// Where a pull of `image` reads from, in order: the mirrors that serve this
    /// kind of pull (by digest or by tag), then the location. Never empty.
    pub fn pull_endpoints(&self, image: &ImageReference) -> Result<Vec<Endpoint>, RegistryError> {
        let Some((table, len)) = self.find(image) else {
            return Ok(vec![Endpoint {
                reference: image.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        refuse_blocked(table, image)?;
        let by_digest = image.digest().is_some();
        let mut endpoints = Vec::with_capacity(table.mirrors.len() + 1);
        for m in &table.mirrors {
            let serves = match m.pull_from_mirror {
                _ if table.mirror_by_digest_only => by_digest,
                PullFromMirror::All => true,
                PullFromMirror::DigestOnly => by_digest,
                PullFromMirror::TagOnly => !by_digest,
            };
            if serves {
                endpoints.push(Endpoint {
                    reference: rewrite(image, len, &m.location, table)?,
                    insecure: m.insecure,
                    mirror: true,
                });
            }
        }
        endpoints.push(Endpoint {
            reference: rewrite(image, len, &table.location, table)?,
            insecure: table.insecure,
            mirror: false,
        });
        Ok(endpoints)
    }

    /// Whether `registry` (`host[:port]`) is a mirror of some table and no table's
    /// location: a pull always has another endpoint after it.
    pub fn is_mirror_only(&self, registry: &str) -> bool {
        let host = |location: &str| location.split('/').next() == Some(registry);
        self.registries
            .iter()
            .any(|t| t.mirrors.iter().any(|m| host(&m.location)))
            && !self
                .registries
                .iter()
                .any(|t| host(&t.location) || host(&t.prefix))
    }

    /// Where a push of `image` writes: the location after prefix rewriting, never
    /// a mirror.
    pub fn push_endpoint(&self, image: &ImageReference) -> Result<Endpoint, RegistryError> {
        let Some((table, len)) = self.find(image) else {
            return Ok(Endpoint {
                reference: image.clone(),
                insecure: false,
                mirror: false,
            });
        };
        refuse_blocked(table, image)?;
        Ok(Endpoint {
            reference: rewrite(image, len, &table.location, table)?,
            insecure: table.insecure,
            mirror: false,
        })
    }

    /// The `host[:port]`s marked `insecure = true` (locations and mirrors), and
    /// those of `images` that an insecure `*.domain` table without a location covers.
    pub fn insecure_hosts(&self, images: &[&ImageReference]) -> Vec<String> {
        let mut hosts = Vec::new();
        for t in &self.registries {
            if t.insecure && !t.location.is_empty() {
                hosts.push(host_of(&t.location).to_string());
            }
            for m in t.mirrors.iter().filter(|m| m.insecure) {
                hosts.push(host_of(&m.location).to_string());
            }
        }
        for image in images {
            if let Some((t, _)) = self.find(image)
                && t.insecure
                && t.location.is_empty()
            {
                hosts.push(image.registry().to_string());
            }
        }
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

fn refuse_blocked(table: &RegistryTable, image: &ImageReference) -> Result<(), RegistryError> {
    if table.blocked {
        return Err(RegistryError::Blocked {
            reference: image.to_string(),
            prefix: table.prefix.clone(),
            file: table.file.clone(),
        });
    }
    Ok(())
}

/// `image` with its first `len` characters (the matched prefix) replaced by
/// `location`; unchanged when the location is empty (a wildcard prefix).
fn rewrite(
    image: &ImageReference,
    len: usize,
    location: &str,
    table: &RegistryTable,
) -> Result<ImageReference, RegistryError> {
    if location.is_empty() {
        return Ok(image.clone());
    }
    let name = image.to_string();
    let rewritten = format!("{location}{}", &name[len..]);
    let bad = |reason: String| {
        RegistryError::BadRewrite(Box::new(BadRewrite {
            reference: name.clone(),
            rewritten: rewritten.clone(),
            prefix: table.prefix.clone(),
            file: table.file.clone(),
            reason,
        }))
    };
    let parsed: ImageReference = rewritten
        .parse()
        .map_err(|e: ReferenceError| bad(format!("not a valid reference: {}", e.reason)))?;
    // A prefix that takes in the tag or digest leaves it to the location: one that
    // names none would turn a pull by digest, or of another tag, into `:latest`.
    // The kind of pull is kept: a digest stays that digest, a tag stays a tag.
    if image.digest().is_some() && parsed.digest() != image.digest() {
        return Err(bad("a pull by digest must keep its digest".into()));
    }
    if image.digest().is_none() && parsed.digest().is_some() {
        return Err(bad("a pull by tag must stay a pull by tag".into()));
    }
    if len == name.len() && image.digest().is_none() && !names_tag_or_digest(location) {
        return Err(bad(
            "the prefix includes the tag, so the location must name one too".into(),
        ));
    }
    Ok(parsed)
}

/// Whether `location` (`host[:port]/path[:tag|@digest]`) ends in a tag or digest.
fn names_tag_or_digest(location: &str) -> bool {
    let last = location.rsplit('/').next().unwrap_or(location);
    location.contains('@') || (location.contains('/') && last.contains(':'))
}

#[cfg(test)]
#[path = "registries_conf/tests.rs"]
mod tests;
