//! Temporary files and directories that cannot outlive their process unnoticed:
//! blobs being written into the cache or a layout, archives being written beside
//! their destination, archives being unpacked, layouts being staged.
//!
//! Each is held under an flock for its whole life, so a later run tells the debris
//! of a killed process (unlocked) from work in progress (locked) with a lock, not a
//! clock: `sweep` removes only what no live process holds, however young. And each
//! is recorded while it exists, so that the binary's signal handler can remove them
//! all (`remove_all_live`) before it exits: the library installs no handler and never
//! exits on its own (the podman runner has the same split, `runner::cleanup`).
//!
//! Creating one races with a sweep in another process (created, not yet locked);
//! a sweeper removes an entry only while holding its lock, and a creator checks,
//! once it holds the lock, that the name is still its own, else makes another.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rustix::fs::{FlockOperation, Mode, OFlags, flock};

/// Mode of every file the cache and the exports keep (temp files start as 0600).
pub const FILE_MODE: u32 = 0o644;
/// Mode of every directory they create (temp directories start as 0700).
pub const DIR_MODE: u32 = 0o755;

struct Live {
    next: u64,
    paths: Vec<(u64, PathBuf)>,
    /// A signal is being handled: no new temporaries.
    stopping: bool,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    next: 0,
    paths: Vec::new(),
    stopping: false,
});

fn live() -> MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A live temporary's record; dropping it forgets the record (the owner removed
/// or renamed it).
#[derive(Debug)]
struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        live().paths.retain(|(id, _)| *id != self.0);
    }
}

fn register(path: &Path) -> io::Result<Registration> {
    let mut l = live();
    if l.stopping {
        return Err(io::Error::other("interrupted by a signal"));
    }
    l.next += 1;
    let id = l.next;
    l.paths.push((id, path.to_path_buf()));
    Ok(Registration(id))
}

/// Removes every temporary this process has under way and refuses new ones.
/// For the binary's signal handler, just before it exits; returns how many.
pub fn remove_all_live() -> usize {
    let paths: Vec<PathBuf> = {
        let mut l = live();
        l.stopping = true;
        l.paths.drain(..).map(|(_, p)| p).collect()
    };
    for p in &paths {
        // A worker thread may still be writing into a directory: try twice.
        for _ in 0..2 {
            if remove_path(p).is_ok() {
                break;
            }
        }
    }
    paths.len()
}

fn remove_path(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `path` still names the file `f` is open on.
fn still_named(path: &Path, f: &File) -> bool {
    match (fs::symlink_metadata(path), f.metadata()) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Names tried before giving up on a directory whose temporaries keep vanishing
/// between creation and locking (each vanishing is another process's sweep).
const MAX_TRIES: usize = 100;

fn lost_race(dir: &Path) -> io::Error {
    io::Error::other(format!(
        "temporary files in {} keep being removed by another process",
        dir.display()
    ))
}

/// A temporary file, locked while it lives; removed on drop unless persisted.
#[derive(Debug)]
pub struct TempFile {
    file: tempfile::NamedTempFile,
    _registration: Registration,
}

impl TempFile {
    /// A new temporary file `PREFIXxxxxxx` in `dir`.
    pub fn new_in(dir: &Path, prefix: &str) -> io::Result<TempFile> {
        for _ in 0..MAX_TRIES {
            let file = tempfile::Builder::new().prefix(prefix).tempfile_in(dir)?;
            let registration = register(file.path())?;
            flock(file.as_file(), FlockOperation::LockExclusive)?;
            if still_named(file.path(), file.as_file()) {
                return Ok(TempFile {
                    file,
                    _registration: registration,
                });
            }
            // Swept by another process before we held it: take another name.
        }
        Err(lost_race(dir))
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn as_file(&self) -> &File {
        self.file.as_file()
    }

    /// Makes the file readable by all (`FILE_MODE`) and renames it to `target`,
    /// replacing what is there. The returned file still holds the lock.
    pub fn persist(self, target: &Path) -> io::Result<File> {
        self.file
            .as_file()
            .set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        let TempFile {
            file,
            _registration,
        } = self;
        file.persist(target).map_err(|e| e.error)
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A temporary directory, locked while it lives; removed (with its contents) on
/// drop unless persisted.
#[derive(Debug)]
pub struct TempDir {
    dir: Option<tempfile::TempDir>,
    _lock: File,
    _registration: Registration,
}

impl TempDir {
    /// A new directory `PREFIXxxxxxx` in `parent`, mode `DIR_MODE`.
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<TempDir> {
        for _ in 0..MAX_TRIES {
            let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(parent)?;
            let registration = register(dir.path())?;
            // Another export's `sweep` may remove the directory before it is
            // locked: then try another name, as when it is removed after.
            let lock = match File::open(dir.path()) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            flock(&lock, FlockOperation::LockExclusive)?;
            if still_named(dir.path(), &lock) {
                fs::set_permissions(dir.path(), fs::Permissions::from_mode(DIR_MODE))?;
                return Ok(TempDir {
                    dir: Some(dir),
                    _lock: lock,
                    _registration: registration,
                });
            }
        }
        Err(lost_race(parent))
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("a live temp dir").path()
    }

    /// Renames the directory to `target` (absent, or an empty directory). On
    /// failure it stays temporary (and is removed on drop).
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        // Under the records' lock: a signal handler removing this directory file
        // by file must not see it renamed into place half-way.
        let l = live();
        if l.stopping {
            return Err(io::Error::other("interrupted by a signal"));
        }
        fs::rename(self.path(), target)?;
        drop(l);
        let _ = self.dir.take().map(tempfile::TempDir::keep);
        Ok(())
    }
}

/// Hard-links `src` to a temporary name `PREFIXpid-n` in `dir`, held (locked) while
/// the returned guard lives; the caller renames it into place. `None` when the file
/// system refuses the link (another device, no permission).
pub fn hard_link_in(src: &Path, dir: &Path, prefix: &str) -> Option<LinkedTemp> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(format!(
        "{prefix}{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let registration = register(&path).ok()?;
    fs::hard_link(src, &path).ok()?;
    let lock = File::open(&path).ok();
    let held = lock
        .as_ref()
        .is_some_and(|f| flock(f, FlockOperation::LockExclusive).is_ok() && still_named(&path, f));
    if !held {
        let _ = fs::remove_file(&path);
        return None;
    }
    Some(LinkedTemp {
        path,
        renamed: false,
        _lock: lock,
        _registration: registration,
    })
}

/// A hard link under a temporary name; removed on drop unless renamed.
#[derive(Debug)]
pub struct LinkedTemp {
    path: PathBuf,
    renamed: bool,
    _lock: Option<File>,
    _registration: Registration,
}

impl LinkedTemp {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the link to `target`.
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.path, target)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for LinkedTemp {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub count: usize,
    pub bytes: u64,
}

impl std::ops::AddAssign for Swept {
    fn add_assign(&mut self, o: Swept) {
        self.count += o.count;
        self.bytes += o.bytes;
    }
}

/// Removes the entries of `dir` named `prefix…` that no live process holds: what
/// killed processes left, whatever its age. Errors (a read-only cache) are ignored.
pub fn sweep(dir: &Path, prefix: &str) -> Swept {
    let mut swept = Swept::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return swept;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = e.path();
        // Never follow a link; never block on a FIFO.
        let Ok(fd) = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        let f = File::from(fd);
        if flock(&f, FlockOperation::NonBlockingLockExclusive).is_err() || !still_named(&path, &f) {
            continue;
        }
        let bytes = disk_usage(&path);
        if remove_path(&path).is_ok() {
            swept.count += 1;
            swept.bytes += bytes;
        }
    }
    swept
}

/// Bytes of the files at or under `path` (not following links).
fn disk_usage(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| disk_usage(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// Creates `dir` if missing, mode `DIR_MODE` whatever the umask (an existing
/// directory is left as it is). Parents must exist.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_temp_dir_survives_concurrent_sweeps() {
        // Seen in CI: an export's staging directory swept away between its
        // creation and its lock, failing the export with NotFound.
        let d = tempfile::tempdir().unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    sweep(d.path(), ".stage-");
                }
            });
            let made: io::Result<Vec<bool>> = (0..1000)
                .map(|_| TempDir::new_in(d.path(), ".stage-").map(|t| t.path().is_dir()))
                .collect();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(made.unwrap().into_iter().all(|made| made));
        });
    }

    #[test]
    fn sweep_removes_only_what_no_one_holds() {
        let d = tempfile::tempdir().unwrap();
        let held = TempFile::new_in(d.path(), ".tmp-").unwrap();
        let held_dir = TempDir::new_in(d.path(), ".unpack-").unwrap();
        fs::write(d.path().join(".tmp-dead"), b"12345").unwrap();
        fs::create_dir(d.path().join(".unpack-dead")).unwrap();
        fs::write(d.path().join(".unpack-dead/f"), b"123").unwrap();
        fs::write(d.path().join("blob"), b"kept").unwrap();
        let swept = sweep(d.path(), ".tmp-");
        assert_eq!(swept, Swept { count: 1, bytes: 5 });
        let swept = sweep(d.path(), ".unpack-");
        assert_eq!(swept, Swept { count: 1, bytes: 3 });
        let mut want = vec![
            "blob".to_string(),
            held.path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            held_dir
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        ];
        want.sort();
        assert_eq!(names(d.path()), want);
        drop(held);
        drop(held_dir);
        assert_eq!(names(d.path()), ["blob"]);
    }

    #[test]
    fn persisted_files_are_world_readable_and_forgotten() {
        let d = tempfile::tempdir().unwrap();
        let mut t = TempFile::new_in(d.path(), ".tmp-").unwrap();
        t.write_all(b"x").unwrap();
        let target = d.path().join("x");
        drop(t.persist(&target).unwrap());
        let mode = fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, FILE_MODE);
        assert!(
            !live().paths.iter().any(|(_, p)| p.starts_with(d.path())),
            "a persisted file is no longer live"
        );
        let dir = TempDir::new_in(d.path(), ".stage-").unwrap();
        let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, DIR_MODE);
        dir.persist(&d.path().join("out")).unwrap();
        assert!(d.path().join("out").is_dir());
        assert_eq!(names(d.path()), ["out", "x"]);
    }
}
