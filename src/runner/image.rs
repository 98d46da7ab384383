//! `podman load` of an archive, undone on drop (`pull` makes the same value).
//!
//! An image is removed again only if its name was not in podman's store before
//! the load, so running a user's own image never deletes it. `podman rmi NAME`
//! of an image with other names only untags it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::RunnerError;
use super::cleanup::{self, Registration, Resource};
use super::podman::{detached, output};

/// An image in podman's store, loaded by ocibench.
#[derive(Debug)]
pub struct LoadedImage {
    /// podman's image ID (the config digest's hex).
    pub id: String,
    /// The name podman gave it (`localhost/app:latest`), or the ID if unnamed.
    pub name: String,
    /// Whether the name (for a pull, also the ID) was already in podman's store
    /// before the load or pull (then it is kept).
    pub existed: bool,
    /// The image existed (by ID) but `name` is new: on drop only the name goes
    /// (`podman untag`), never the image.
    untag: bool,
    podman: PathBuf,
    registration: Option<Registration>,
}

impl LoadedImage {
    /// A short ID for container names (12 hex digits, as podman shows).
    pub fn short_id(&self) -> &str {
        let id = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &id[..id.len().min(12)]
    }

    /// Keeps the image in podman's store when this value is dropped.
    pub fn keep(mut self) {
        self.existed = true;
    }
}

impl Drop for LoadedImage {
    fn drop(&mut self) {
        let args: Option<[&str; 3]> = if !self.existed {
            Some(["rmi", "--ignore", &self.name])
        } else if self.untag {
            Some(["untag", &self.id, &self.name])
        } else {
            None
        };
        if let Some(args) = args {
            let _ = detached(&self.podman)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        drop(self.registration.take());
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImageListEntry {
    #[serde(default)]
    id: String,
    #[serde(default)]
    names: Option<Vec<String>>,
}

/// Every name and ID in podman's store.
pub(crate) fn known_images(podman: &Path) -> Result<HashSet<String>, RunnerError> {
    let out = output(
        detached(podman).args(["images", "--format", "json"]),
        "podman images",
    )?;
    let list: Vec<ImageListEntry> =
        serde_json::from_slice(&out.stdout).map_err(|e| RunnerError::Output {
            what: "podman images --format json".into(),
            detail: e.to_string(),
        })?;
    Ok(list
        .into_iter()
        .flat_map(|e| std::iter::once(e.id).chain(e.names.unwrap_or_default()))
        .collect())
}

/// The names `podman load` reports: `Loaded image: NAME` (podman 4) or
/// `Loaded image(s): A,B` (podman 3).
pub fn parse_load_output(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("Loaded image(s):")
                .or_else(|| l.trim().strip_prefix("Loaded image:"))
        })
        .flat_map(|rest| rest.split(','))
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

pub(crate) fn load(podman: &Path, archive: &Path) -> Result<LoadedImage, RunnerError> {
    let before = known_images(podman)?;
    let creating = cleanup::creating()?;
    let out = output(
        detached(podman).arg("load").arg("-i").arg(archive),
        "podman load",
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let name = parse_load_output(&stdout)
        .into_iter()
        .next()
        .ok_or_else(|| RunnerError::Output {
            what: "podman load".into(),
            detail: format!("no \"Loaded image:\" line in {:?}", stdout.trim()),
        })?;
    let name = name.strip_prefix("sha256:").unwrap_or(&name).to_string();
    let existed = before.contains(&name);
    let registration = (!existed).then(|| {
        creating.record(Resource::Image {
            podman: podman.to_path_buf(),
            name: name.clone(),
        })
    });
    drop(creating);
    let mut image = LoadedImage {
        id: String::new(),
        name,
        existed,
        untag: false,
        podman: podman.to_path_buf(),
        registration,
    };
    let out = output(
        detached(podman).args(["image", "inspect", "--format", "{{.Id}}", &image.name]),
        "podman image inspect",
    )?;
    image.id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(image)
}

/// An image podman just put in its store under `name` (removed on drop, recorded
/// for removal on a signal), or one it already had (`existed`: kept).
pub(crate) fn created(
    podman: &Path,
    name: String,
    id: String,
    existed: bool,
    registration: Option<Registration>,
) -> LoadedImage {
    LoadedImage {
        id,
        name,
        existed,
        untag: false,
        podman: podman.to_path_buf(),
        registration,
    }
}

/// A pulled image that podman had already (by ID) under other names: only the
/// new `name` is removed on drop.
pub(crate) fn renamed(podman: &Path, name: String, id: String) -> LoadedImage {
    let mut image = created(podman, name, id, true, None);
    image.untag = true;
    image
}

/// An image already in podman's store: kept on drop.
pub(crate) fn existing(podman: &Path, reference: &str, id: &str) -> LoadedImage {
    LoadedImage {
        id: id.to_string(),
        name: reference.to_string(),
        existed: true,
        untag: false,
        podman: podman.to_path_buf(),
        registration: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_output() {
        assert_eq!(
            parse_load_output("Loaded image: localhost/app:latest\n"),
            vec!["localhost/app:latest"]
        );
        assert_eq!(
            parse_load_output("Loaded image(s): localhost/a:1,localhost/b:2\n"),
            vec!["localhost/a:1", "localhost/b:2"]
        );
        assert_eq!(
            parse_load_output("Loaded image: sha256:95601b9651bd\n"),
            vec!["sha256:95601b9651bd"]
        );
        assert!(parse_load_output("Getting image source signatures\n").is_empty());
    }
}
