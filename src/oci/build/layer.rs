//! Reproducible layer building (see DESIGN.md "Layers and reproducibility").
//!
//! A `LayerBuilder` maps sources (directories or single files) to absolute
//! destinations inside the layer and writes the layer in one streaming pass:
//!
//! ```text
//! tar entries -> HashingWriter (diff_id, uncompressed length)
//!             -> LayerWriter (ParallelGzip or ZstdWriter) -> out (digest, compressed length)
//! ```
//!
//! The compressed stream is hashed once, by whoever receives it: the blob
//! store's writer hashes what it stores anyway, so `write_to_store` takes the
//! digest from it; `write_to` hashes on its own.
//!
//! The bytes depend only on the sources' names, contents, permission bits, link
//! structure, the epoch, and the compression and level; never on on-disk mtimes, owners,
//! `readdir` order or thread count. The rules:
//!
//! - entries come in bytewise order of their tar names (directories end in
//!   `/`); the tree is walked depth-first with each directory's children sorted
//!   by that key, which yields the global order while holding only one
//!   directory listing per level in memory;
//! - parents of each destination are created (mode 0755); the directory that is
//!   a source itself keeps its own mode; paths are relative (`app/server.py`);
//! - every mtime is the epoch, uid/gid 0, user and group names empty, no
//!   atime/ctime/xattrs; permission bits kept, setuid/setgid/sticky included;
//! - symlinks stay symlinks (dangling ones too, also when the source itself is
//!   one); a file seen again with the same device and inode becomes a hard-link
//!   entry to the first path; sockets, FIFOs and devices are refused;
//! - sources overlap the way `COPY` does: directories merge, a more specific
//!   destination replaces a file, and a file where another source has a
//!   directory is an error.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use crate::oci::build::layer_error::LayerError;
use crate::oci::build::layer_error::read_err;
use crate::oci::build::layer_tar::{self, EntryKind, TarHeader};
use crate::oci::build::layer_walk::{Level, MountNode, Origin, Stat};
use crate::oci::compress::{LayerCompression, LayerWriter};
use crate::oci::digest::{Digest, HashingWriter};
use crate::oci::store::{BlobStore, LayerMeta};
use crate::progress::{Reporter, Task, TaskId};

fn write_err(source: io::Error) -> LayerError {
    LayerError::Write { source }
}

/// Splits a `SRC[:DEST]` layer spec. DEST is absolute, so the split is at the
/// last `:/` (SRC may itself contain colons).
pub fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.rfind(":/") {
        Some(i) => (&spec[..i], Some(&spec[i + 1..])),
        None => (spec, None),
    }
}

/// The epoch for every timestamp: `SOURCE_DATE_EPOCH` when set and not empty, else 0.
pub fn source_date_epoch() -> Result<u64, LayerError> {
    parse_source_date_epoch(std::env::var_os("SOURCE_DATE_EPOCH").as_deref())
}

/// `source_date_epoch` on a given value (unset is `None`).
pub fn parse_source_date_epoch(value: Option<&OsStr>) -> Result<u64, LayerError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(0);
    };
    v.to_str()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| LayerError::BadEpoch {
            value: v.to_string_lossy().into_owned(),
        })
}

/// What a written layer is: what manifests and configs need, and the store remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// sha256 of the compressed blob (the manifest's layer digest).
    pub digest: Digest,
    pub compressed_bytes: u64,
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    pub uncompressed_bytes: u64,
}

/// Builds one layer from sources mapped to destinations.
#[derive(Debug, Clone)]
pub struct LayerBuilder {
    sources: Vec<(PathBuf, String)>,
    mtime: u64,
    compression: LayerCompression,
    threads: usize,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    /// An empty layer, epoch 0, gzip level 6, one compression thread per core.
    pub fn new() -> Self {
        LayerBuilder {
            sources: Vec::new(),
            mtime: 0,
            compression: LayerCompression::default(),
            threads: 0,
        }
    }

    /// Adds `src` at `dest` (absolute, no `..`): a directory's contents go under
    /// `dest` (which takes the directory's mode); a file or symlink is named `dest`.
    /// Checked when the layer is written.
    pub fn add(&mut self, src: impl Into<PathBuf>, dest: &str) -> &mut Self {
        self.sources.push((src.into(), dest.to_string()));
        self
    }

    /// The timestamp of every entry (`SOURCE_DATE_EPOCH`); default 0.
    pub fn mtime(&mut self, epoch: u64) -> &mut Self {
        self.mtime = epoch;
        self
    }

    /// gzip at this level, 0..=9 (default 6). Part of the layer's identity.
    pub fn level(&mut self, level: u32) -> &mut Self {
        self.compression = LayerCompression::Gzip { level };
        self
    }

    /// The compression and level (default gzip 6). Part of the layer's identity.
    pub fn compression(&mut self, compression: LayerCompression) -> &mut Self {
        self.compression = compression;
        self
    }

    /// Compression threads; 0 (the default) means one per core. Does not change the bytes.
    pub fn threads(&mut self, threads: usize) -> &mut Self {
        self.threads = threads;
        self
    }

    /// Writes the compressed layer to `out`.
    pub fn write_to<W: Write>(
        &self,
        out: W,
        progress: &dyn Reporter,
    ) -> Result<LayerStats, LayerError> {
        let (out, diff_id, uncompressed_bytes) =
            self.write_stream(HashingWriter::new(out), progress)?;
        let (_, digest, compressed_bytes) = out.finish();
        Ok(LayerStats {
            digest,
            compressed_bytes,
            diff_id,
            uncompressed_bytes,
        })
    }

    /// Writes the layer into `store` (verified, then renamed into place) and
    /// records its diff_id and uncompressed size. On error nothing is stored.
    pub fn write_to_store(
        &self,
        store: &BlobStore,
        progress: &dyn Reporter,
    ) -> Result<LayerStats, LayerError> {
        // The store's writer hashes what it writes: that is the digest.
        let (w, diff_id, uncompressed_bytes) = self.write_stream(store.writer()?, progress)?;
        let (digest, compressed_bytes) = w.commit(None)?;
        let stats = LayerStats {
            digest,
            compressed_bytes,
            diff_id,
            uncompressed_bytes,
        };
        store.put_layer_meta(
            &stats.digest,
            &LayerMeta {
                diff_id: stats.diff_id.clone(),
                uncompressed_bytes: stats.uncompressed_bytes,
            },
        )?;
        Ok(stats)
    }

    /// Writes the compressed layer to `out`; returns `out`, the diff_id and the
    /// uncompressed length. Hashing the compressed bytes is the caller's part.
    fn write_stream<W: Write>(
        &self,
        out: W,
        progress: &dyn Reporter,
    ) -> Result<(W, Digest, u64), LayerError> {
        let root = self.plan()?;
        let gz = LayerWriter::new(out, self.compression, self.threads).map_err(write_err)?;
        let mut emitter = Emitter {
            out: HashingWriter::new(gz),
            mtime: self.mtime,
            links: HashMap::new(),
            buf: vec![0; 256 * 1024],
            progress,
            id: progress.start(Task::Layer {
                dest: match &self.sources[..] {
                    [(_, dest)] => Some(dest.as_str()),
                    _ => None,
                },
                sources: self.sources.len(),
            }),
        };
        let res = emitter.run(&root);
        progress.finish(emitter.id);
        res?;
        let (gz, diff_id, uncompressed_bytes) = emitter.out.finish();
        let out = gz.finish().map_err(write_err)?;
        Ok((out, diff_id, uncompressed_bytes))
    }

    /// Checks what can be checked before writing: the level, every destination,
    /// and that every source exists. (Problems inside source trees show up while
    /// writing.) Lets a command reject bad input before doing slow work.
    pub fn check(&self) -> Result<(), LayerError> {
        self.plan().map(drop)
    }

    /// Validates destinations and sources, and arranges them as a tree of mount points.
    fn plan(&self) -> Result<MountNode, LayerError> {
        if !self.compression.level_in_range() {
            return Err(LayerError::BadLevel(self.compression));
        }
        let mut root = MountNode::default();
        for (src, dest) in &self.sources {
            let comps = parse_dest(dest)?;
            let meta = fs::symlink_metadata(src).map_err(|source| LayerError::Source {
                path: src.clone(),
                source,
            })?;
            if comps.is_empty() && !meta.is_dir() {
                return Err(LayerError::BadDest {
                    dest: dest.clone(),
                    reason: "only a directory can be placed at /; give the file a name",
                });
            }
            let mut node = &mut root;
            for c in comps {
                node = node.children.entry(c).or_default();
            }
            node.own.push((src.clone(), meta));
        }
        Ok(root)
    }
}

/// Splits an absolute destination into components, dropping `.` and empty ones.
fn parse_dest(dest: &str) -> Result<Vec<Vec<u8>>, LayerError> {
    let bad = |reason| LayerError::BadDest {
        dest: dest.to_string(),
        reason,
    };
    if !dest.starts_with('/') {
        return Err(bad("it must be an absolute path (start with /)"));
    }
    let mut comps = Vec::new();
    for c in dest.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad("it must not contain '..'")),
            c if c.contains('\0') => return Err(bad("it must not contain NUL")),
            c => comps.push(c.as_bytes().to_vec()),
        }
    }
    Ok(comps)
}

/// Streams entries into the tar writer.
struct Emitter<'r, W: Write> {
    out: HashingWriter<LayerWriter<W>>,
    mtime: u64,
    /// (device, inode) of multiply-linked files already written -> their name.
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
    progress: &'r dyn Reporter,
    id: TaskId,
}

impl<W: Write> Emitter<'_, W> {
    fn run(&mut self, root: &MountNode) -> Result<(), LayerError> {
        let dirs: Vec<PathBuf> = root.own.iter().map(|(p, _)| p.clone()).collect();
        self.visit_dir(&mut Vec::new(), &dirs, Some(root))?;
        layer_tar::write_end(&mut self.out).map_err(write_err)?;
        Ok(())
    }

    /// Writes the entries below the directory whose tar name is `prefix`
    /// (empty for the root, else ending in `/`).
    fn visit_dir(
        &mut self,
        prefix: &mut Vec<u8>,
        dirs: &[PathBuf],
        mount: Option<&MountNode>,
    ) -> Result<(), LayerError> {
        let level = Level { dirs, mount };
        let mut children = level.list()?;
        level.resolve(&mut children, prefix)?;
        let mut i = 0;
        while i < children.len() {
            let c = &children[i];
            let len = prefix.len();
            prefix.extend_from_slice(&c.name);
            if c.is_dir {
                let end = i + children[i..]
                    .iter()
                    .take_while(|d| d.name == c.name)
                    .count();
                let group = &children[i..end];
                // The last real directory gives the mode (0755 if none); sources merge.
                let mode = group
                    .iter()
                    .rev()
                    .find(|d| d.origin != Origin::Synthesized)
                    .map_or(0o755, |d| d.stat.perm());
                let sub: Vec<PathBuf> = group.iter().filter_map(|d| level.path(d)).collect();
                prefix.push(b'/');
                self.header(prefix, EntryKind::Dir, mode, 0, b"")?;
                self.visit_dir(prefix, &sub, level.child_mount(&c.name))?;
                i = end;
            } else {
                if !c.shadowed {
                    let path = level.path(c).expect("leaves are real");
                    self.leaf(prefix, &path, c.stat)?;
                }
                i += 1;
            }
            prefix.truncate(len);
        }
        Ok(())
    }

    fn header(
        &mut self,
        name: &[u8],
        kind: EntryKind,
        mode: u32,
        size: u64,
        link: &[u8],
    ) -> Result<(), LayerError> {
        let h = TarHeader {
            name,
            kind,
            mode,
            size,
            mtime: self.mtime,
            link,
        };
        layer_tar::write_header(&mut self.out, &h).map_err(write_err)?;
        Ok(())
    }

    fn leaf(&mut self, name: &[u8], path: &Path, stat: Stat) -> Result<(), LayerError> {
        let mode = stat.perm();
        match stat.file_type() {
            libc::S_IFREG => {}
            libc::S_IFLNK => {
                let target = fs::read_link(path).map_err(read_err(path))?;
                let target = target.as_os_str().as_bytes();
                return self.header(name, EntryKind::Symlink, mode, 0, target);
            }
            t => {
                let kind = match t {
                    libc::S_IFIFO => "FIFO",
                    libc::S_IFSOCK => "socket",
                    libc::S_IFCHR => "character device",
                    libc::S_IFBLK => "block device",
                    _ => "file of unknown type",
                };
                return Err(LayerError::Unsupported {
                    path: path.to_path_buf(),
                    kind,
                });
            }
        }
        if stat.linked {
            match self.links.entry((stat.dev, stat.ino)) {
                Entry::Occupied(first) => {
                    let first = first.get().clone();
                    return self.header(name, EntryKind::HardLink, mode, 0, &first);
                }
                Entry::Vacant(v) => {
                    v.insert(name.to_vec());
                }
            }
        }
        self.header(name, EntryKind::File, mode, stat.size, b"")?;
        self.copy_file(path, stat.size)?;
        let pad = layer_tar::padding(stat.size);
        self.out
            .write_all(&[0u8; layer_tar::BLOCK][..pad])
            .map_err(write_err)
    }

    /// Streams exactly `size` bytes of `path`; a file that shrank or grew is an error.
    fn copy_file(&mut self, path: &Path, size: u64) -> Result<(), LayerError> {
        let mut f = File::open(path).map_err(read_err(path))?;
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match f.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(LayerError::Changed {
                        path: path.to_path_buf(),
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(path)(e)),
            };
            self.out.write_all(&self.buf[..n]).map_err(write_err)?;
            left -= n as u64;
            self.progress.advance(self.id, n as u64);
        }
        loop {
            match f.read(&mut self.buf[..1]) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(LayerError::Changed {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(path)(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[derive(Debug, PartialEq)]
    struct Item {
        name: String,
        kind: char,
        mode: u32,
        size: u64,
        mtime: u64,
        link: Option<String>,
    }

    fn build(b: &LayerBuilder) -> (Vec<u8>, LayerStats) {
        let mut out = Vec::new();
        let stats = b.write_to(&mut out, &NoProgress).unwrap();
        (out, stats)
    }

    fn list(gz: &[u8]) -> Vec<Item> {
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let mut ar = tar::Archive::new(&tar_bytes[..]);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                // The raw name keeps directories' trailing '/'.
                let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                assert_eq!(h.uid().unwrap(), 0);
                assert_eq!(h.gid().unwrap(), 0);
                assert_eq!(h.username_bytes(), Some(&b""[..]));
                Item {
                    name,
                    kind: h.entry_type().as_byte() as char,
                    mode: h.mode().unwrap(),
                    size: h.size().unwrap(),
                    mtime: h.mtime().unwrap(),
                    link: e
                        .link_name_bytes()
                        .map(|l| String::from_utf8(l.into_owned()).unwrap()),
                }
            })
            .collect()
    }

    fn names(items: &[Item]) -> Vec<&str> {
        items.iter().map(|i| i.name.as_str()).collect()
    }

    fn write(path: &Path, content: &[u8], mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn entries_sorted_with_parents_and_modes() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        write(&src.join("b"), b"bee", 0o644);
        write(&src.join("a-b"), b"", 0o755);
        write(&src.join("a/x"), b"x", 0o4755);
        fs::create_dir(src.join("empty")).unwrap();
        fs::set_permissions(src.join("empty"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o750)).unwrap();
        let (gz, stats) = build(LayerBuilder::new().add(&src, "/srv/app").mtime(1234));
        let items = list(&gz);
        assert_eq!(
            names(&items),
            [
                "srv/",
                "srv/app/",
                "srv/app/a-b",
                "srv/app/a/",
                "srv/app/a/x",
                "srv/app/b",
                "srv/app/empty/"
            ]
        );
        let mut sorted = names(&items);
        sorted.sort();
        assert_eq!(sorted, names(&items), "bytewise order of tar names");
        assert_eq!(items[0].mode, 0o755, "synthesized parent");
        assert_eq!(items[1].mode, 0o750, "the source directory's own mode");
        assert_eq!(items[4].mode, 0o4755);
        assert_eq!(items[5].size, 3);
        assert_eq!(items[6].mode, 0o1777);
        assert!(items.iter().all(|i| i.mtime == 1234));
        assert_eq!(stats.compressed_bytes, gz.len() as u64);
        assert_eq!(stats.digest, Digest::of(&gz));
    }

    #[test]
    fn links_and_single_files() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        write(&src.join("z/first"), b"same inode", 0o600);
        fs::hard_link(src.join("z/first"), src.join("a-second")).unwrap();
        symlink("../nowhere", src.join("dangling")).unwrap();
        let tool = t.path().join("tool");
        write(&tool, b"#!/bin/sh\n", 0o755);
        let (gz, _) = build(
            LayerBuilder::new()
                .add(&src, "/")
                .add(&tool, "/usr/local/bin/tool"),
        );
        let items = list(&gz);
        assert_eq!(
            names(&items),
            [
                "a-second",
                "dangling",
                "usr/",
                "usr/local/",
                "usr/local/bin/",
                "usr/local/bin/tool",
                "z/",
                "z/first"
            ]
        );
        assert_eq!(
            items[0].kind, '0',
            "the first path in order carries the content"
        );
        assert_eq!(items[0].size, 10);
        assert_eq!(items[7].kind, '1');
        assert_eq!(items[7].link.as_deref(), Some("a-second"));
        assert_eq!(items[1].kind, '2');
        assert_eq!(items[1].link.as_deref(), Some("../nowhere"));
        assert_eq!(items[1].mode, 0o777);
        assert_eq!(items[5].mode, 0o755);
    }

    #[test]
    fn overlapping_sources_merge_like_copy() {
        let t = tempfile::tempdir().unwrap();
        let app = t.path().join("app");
        write(&app.join("config.toml"), b"old", 0o644);
        write(&app.join("lib/a.py"), b"a", 0o644);
        let extra = t.path().join("extra");
        write(&extra.join("b.py"), b"b", 0o644);
        let cfg = t.path().join("config.toml");
        write(&cfg, b"new!", 0o600);
        let (gz, _) = build(
            LayerBuilder::new()
                .add(&cfg, "/app/config.toml")
                .add(&app, "/app")
                .add(&extra, "/app/lib/"),
        );
        let items = list(&gz);
        assert_eq!(
            names(&items),
            [
                "app/",
                "app/config.toml",
                "app/lib/",
                "app/lib/a.py",
                "app/lib/b.py"
            ]
        );
        assert_eq!(
            (items[1].size, items[1].mode),
            (4, 0o600),
            "the more specific source wins"
        );

        // A parent created for a deeper source keeps the mode of the real
        // directory another source has there.
        fs::set_permissions(app.join("lib"), fs::Permissions::from_mode(0o700)).unwrap();
        let (gz, _) = build(
            LayerBuilder::new()
                .add(&app, "/")
                .add(&cfg, "/lib/deeper/c"),
        );
        let items = list(&gz);
        let lib = items.iter().find(|i| i.name == "lib/").unwrap();
        assert_eq!(lib.mode, 0o700);
        let deeper = items.iter().find(|i| i.name == "lib/deeper/").unwrap();
        assert_eq!(deeper.mode, 0o755);
        assert!(items.iter().any(|i| i.name == "lib/a.py"));

        let err = LayerBuilder::new()
            .add(&app, "/app")
            .add(&extra, "/app/config.toml")
            .write_to(io::sink(), &NoProgress)
            .unwrap_err();
        assert!(
            matches!(err, LayerError::Conflict { ref dest, .. } if dest == "/app/config.toml"),
            "{err}"
        );
    }

    #[test]
    fn long_and_unicode_names() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let long = format!("{}/{}", "d".repeat(90), "f".repeat(59));
        write(&src.join(&long), b"long", 0o644);
        write(&src.join("café/naïve.txt"), b"utf8", 0o644);
        symlink(&long, src.join("to-long")).unwrap();
        let (gz, _) = build(LayerBuilder::new().add(&src, "/"));
        let items = list(&gz);
        assert_eq!(items[3].name, long);
        assert_eq!(items[3].name.len(), 150);
        assert_eq!(items[1].name, "café/naïve.txt");
        assert_eq!(items[4].link.as_deref(), Some(long.as_str()));
    }

    #[test]
    fn same_bytes_regardless_of_threads_and_mtimes() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        for i in 0..40 {
            write(
                &src.join(format!("d{}/f{i}", i % 5)),
                &crate::oci::compress::pgzip::tests::test_bytes(7000 * i, i as u64),
                0o644,
            );
        }
        let mut b = LayerBuilder::new();
        b.add(&src, "/data");
        let (one, s1) = build(b.clone().threads(1));
        assert_eq!(one, build(b.clone().threads(1)).0, "same run, same bytes");
        // Touch a file: contents same, mtime new.
        let f = src.join("d1/f1");
        let content = fs::read(&f).unwrap();
        fs::write(&f, content).unwrap();
        let (four, s4) = build(b.clone().threads(4));
        let one_after = build(b.clone().threads(1)).0;
        let l1 = list(&one);
        let l2 = list(&one_after);
        assert_eq!(l1, l2);
        assert_eq!(one.len(), one_after.len(), "touched");
        assert_eq!(one, one_after, "touched");
        assert_eq!(one, four);
        assert_eq!(s1, s4);
        let (other_epoch, _) = build(b.clone().mtime(1));
        assert_ne!(one, other_epoch);
    }

    /// zstd layers: the same bytes for any thread count (libzstd's workers always
    /// on), and the same tar inside as the gzip layer, hence the same diff_id.
    #[test]
    fn zstd_same_bytes_for_any_thread_count_and_the_gzip_tar() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        for i in 0..12u64 {
            let data = crate::oci::compress::pgzip::tests::test_bytes(1 << 20, i);
            write(&src.join(format!("f{i}")), &data, 0o644);
        }
        let mut b = LayerBuilder::new();
        b.add(&src, "/data").compression(LayerCompression::zstd());
        let (one, s1) = build(b.clone().threads(1));
        for threads in [2, 4] {
            let (other, s) = build(b.clone().threads(threads));
            assert!(other == one, "{threads} threads");
            assert_eq!(s, s1);
        }
        // The tar is the gzip layer's: one diff_id whatever the compression.
        assert_eq!(build(b.clone().level(6)).1.diff_id, s1.diff_id);
        let mut tar = Vec::new();
        crate::oci::compress::decompressed(&one[..], crate::oci::manifest::Compression::Zstd)
            .unwrap()
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(
            (Digest::of(&tar), tar.len() as u64),
            (s1.diff_id.clone(), s1.uncompressed_bytes)
        );
        assert_eq!(s1.digest, Digest::of(&one));
    }

    #[test]
    fn bad_input_is_named() {
        let t = tempfile::tempdir().unwrap();
        let missing = t.path().join("missing");
        let err = LayerBuilder::new()
            .add(&missing, "/x")
            .write_to(io::sink(), &NoProgress)
            .unwrap_err();
        assert!(matches!(err, LayerError::Source { ref path, .. } if *path == missing));

        for dest in ["app", "/app/../etc", ""] {
            let err = LayerBuilder::new()
                .add(t.path(), dest)
                .write_to(io::sink(), &NoProgress)
                .unwrap_err();
            assert!(matches!(err, LayerError::BadDest { .. }), "{dest}: {err}");
        }
        let err = LayerBuilder::new().level(10).check().unwrap_err();
        assert!(
            matches!(
                err,
                LayerError::BadLevel(LayerCompression::Gzip { level: 10 })
            ),
            "{err}"
        );
        for level in [0, 23] {
            let err = LayerBuilder::new()
                .compression(LayerCompression::Zstd { level })
                .check()
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("zstd level {level} is out of range 1..=22")
            );
        }
        assert!(LayerBuilder::new().add(t.path(), "/ok").check().is_ok());

        let file = t.path().join("file");
        write(&file, b"", 0o644);
        let err = LayerBuilder::new()
            .add(&file, "/")
            .write_to(io::sink(), &NoProgress)
            .unwrap_err();
        assert!(matches!(err, LayerError::BadDest { .. }));

        let src = t.path().join("src");
        fs::create_dir(&src).unwrap();
        let fifo = src.join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = LayerBuilder::new()
            .add(&src, "/app")
            .write_to(io::sink(), &NoProgress)
            .unwrap_err();
        assert!(matches!(err, LayerError::Unsupported { ref path, kind: "FIFO" } if *path == fifo));
        assert!(err.to_string().contains("pipe"), "{err}");
    }

    #[test]
    fn epoch_parsing() {
        assert_eq!(parse_source_date_epoch(None).unwrap(), 0);
        assert_eq!(parse_source_date_epoch(Some(OsStr::new(""))).unwrap(), 0);
        assert_eq!(
            parse_source_date_epoch(Some(OsStr::new("1700000000"))).unwrap(),
            1_700_000_000
        );
        for bad in ["-1", "1.5", "soon", " 1"] {
            assert!(matches!(
                parse_source_date_epoch(Some(OsStr::new(bad))),
                Err(LayerError::BadEpoch { .. })
            ));
        }
    }

    #[test]
    fn empty_layer_is_valid() {
        let (gz, stats) = build(&LayerBuilder::new());
        assert!(list(&gz).is_empty());
        assert_eq!(stats.uncompressed_bytes, 1024);
    }
}
