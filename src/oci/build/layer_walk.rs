//! The directory walk behind `layer`: which entries a layer has, and in what order.
//!
//! Sources are mounted at destinations (`MountNode`); each directory of the
//! layer is listed from every real directory merged into it plus the mount
//! points below it (`Level`), its claims resolved (directories merge, a later
//! leaf shadows an earlier one, a file against a directory is a conflict) and
//! sorted into tar order. Only one listing per depth is in memory at a time,
//! as compact records.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::oci::build::layer_error::{LayerError, read_err};

/// A destination path: the sources placed exactly here (in `add` order) and deeper ones.
#[derive(Default)]
pub(super) struct MountNode {
    pub(super) own: Vec<(PathBuf, Metadata)>,
    pub(super) children: BTreeMap<Vec<u8>, MountNode>,
}

/// What the walk keeps of a directory entry until it is written. A whole
/// directory's listing is held at once, so this stays small (~60 bytes plus the
/// name): a 100k-entry directory must not cost tens of MiB.
pub(super) struct Child {
    pub(super) name: Box<[u8]>,
    pub(super) stat: Stat,
    pub(super) origin: Origin,
    /// Set once the name's claims are resolved: a directory sorts as `name/`.
    pub(super) is_dir: bool,
    /// A leaf hidden by a later claim on the same name (a more specific source).
    pub(super) shadowed: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Stat {
    /// `st_mode`: file type and permission bits.
    pub(super) mode: u32,
    pub(super) size: u64,
    /// Device and inode, meaningful when `linked` (more than one link).
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) linked: bool,
}

impl Stat {
    pub(super) fn of(m: &Metadata) -> Stat {
        Stat {
            mode: m.mode(),
            size: m.len(),
            dev: m.dev(),
            ino: m.ino(),
            linked: m.nlink() > 1,
        }
    }

    pub(super) fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    pub(super) fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    pub(super) fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// Where a claim on a name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// That name inside the `i`th directory being listed.
    InDir(u32),
    /// The `k`th source added at exactly that destination.
    Source(u32),
    /// A parent of a destination, with no source of its own: a 0755 directory.
    Synthesized,
}

/// One directory of the layer being written: the real directories merged
/// into it and the mount points below it.
pub(super) struct Level<'a, 'm> {
    pub(super) dirs: &'a [PathBuf],
    pub(super) mount: Option<&'m MountNode>,
}

impl<'m> Level<'_, 'm> {
    pub(super) fn child_mount(&self, name: &[u8]) -> Option<&'m MountNode> {
        self.mount.and_then(|m| m.children.get(name))
    }

    pub(super) fn path(&self, c: &Child) -> Option<PathBuf> {
        match c.origin {
            Origin::InDir(i) => Some(self.dirs[i as usize].join(OsStr::from_bytes(&c.name))),
            Origin::Source(k) => {
                let node = self
                    .child_mount(&c.name)
                    .expect("a source has a mount node");
                Some(node.own[k as usize].0.clone())
            }
            Origin::Synthesized => None,
        }
    }

    /// Lists every claim on every name, in precedence order per name.
    pub(super) fn list(&self) -> Result<Vec<Child>, LayerError> {
        let mut children = Vec::new();
        for (i, dir) in self.dirs.iter().enumerate() {
            for entry in fs::read_dir(dir).map_err(read_err(dir))? {
                let entry = entry.map_err(read_err(dir))?;
                // DirEntry::metadata does not follow symlinks.
                let meta = entry.metadata().map_err(|e| read_err(&entry.path())(e))?;
                children.push(Child {
                    name: entry.file_name().as_bytes().into(),
                    stat: Stat::of(&meta),
                    origin: Origin::InDir(i as u32),
                    is_dir: false,
                    shadowed: false,
                });
            }
        }
        for (name, node) in self.mount.iter().flat_map(|m| &m.children) {
            let own = node.own.iter().enumerate();
            let claims: Vec<(Origin, Stat)> = if node.own.is_empty() {
                let dir = Stat {
                    mode: libc::S_IFDIR | 0o755,
                    size: 0,
                    dev: 0,
                    ino: 0,
                    linked: false,
                };
                vec![(Origin::Synthesized, dir)]
            } else {
                own.map(|(k, (_, m))| (Origin::Source(k as u32), Stat::of(m)))
                    .collect()
            };
            for (origin, stat) in claims {
                children.push(Child {
                    name: name.as_slice().into(),
                    stat,
                    origin,
                    is_dir: false,
                    shadowed: false,
                });
            }
        }
        Ok(children)
    }

    /// Decides what each name is, then sorts the children into tar order
    /// (bytewise, directories as `name/`), claims on one name kept together.
    pub(super) fn resolve(&self, children: &mut [Child], prefix: &[u8]) -> Result<(), LayerError> {
        // Stable: claims on one name stay in precedence order.
        children.sort_by(|a, b| a.name.cmp(&b.name));
        let mut start = 0;
        while start < children.len() {
            let end = start
                + children[start..]
                    .iter()
                    .take_while(|c| c.name == children[start].name)
                    .count();
            let group = &mut children[start..end];
            let n_dirs = group.iter().filter(|c| c.stat.is_dir()).count();
            let has_children = self
                .child_mount(&group[0].name)
                .is_some_and(|m| !m.children.is_empty());
            if n_dirs == group.len() {
                group.iter_mut().for_each(|c| c.is_dir = true);
            } else if n_dirs == 0 && !has_children {
                let last = group.len() - 1;
                group[..last].iter_mut().for_each(|c| c.shadowed = true);
            } else {
                let mut dest = b"/".to_vec();
                dest.extend_from_slice(prefix);
                dest.extend_from_slice(&group[0].name);
                return Err(LayerError::Conflict {
                    dest: String::from_utf8_lossy(&dest).into_owned(),
                    sources: group.iter().filter_map(|c| self.path(c)).collect(),
                });
            }
            start = end;
        }
        // Sorting with the `/` appended puts each directory's subtree exactly
        // where its names fall in bytewise order of full paths.
        fn key(c: &Child) -> impl Iterator<Item = u8> + '_ {
            let slash = c.is_dir.then_some(b'/');
            c.name.iter().copied().chain(slash)
        }
        children.sort_by(|a, b| key(a).cmp(key(b)));
        Ok(())
    }
}
