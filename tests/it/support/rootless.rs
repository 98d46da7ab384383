//! An unprivileged user for the rootless podman tests, made by the tests
//! themselves: `useradd` with a subuid/subgid range of its own, a clean
//! `XDG_RUNTIME_DIR` owned by it (no logind session: `loginctl` is not used),
//! and `ocibench` run as it through `setpriv` with a controlled environment.
//!
//! Creation is idempotent and safe between test processes (an exclusive
//! `flock` on a file in /tmp around it). Each test holds a shared lock while it
//! uses the user; the last one to finish (it gets the exclusive lock without
//! waiting) resets the user's podman (`podman system reset`: its containers,
//! images, vfs storage and the rootless pause process go).

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::fs::{FlockOperation, flock};

use super::TestContext;
use super::tools::{command, require};

/// The test user's name (one for all tests: `useradd` is slow and global).
pub const USER: &str = "ocibench-rl";
const LOCK_FILE: &str = "/tmp/ocibench-rootless.lock";

/// The test user, held while a test uses it; see the module header.
pub struct RootlessUser {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// `XDG_RUNTIME_DIR`, 0700, owned by the user.
    pub runtime_dir: PathBuf,
    lock: File,
}

fn lock_file() -> File {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .expect("open the rootless lock file");
    let _ = std::fs::set_permissions(LOCK_FILE, std::fs::Permissions::from_mode(0o600));
    f
}

fn id(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, USER]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The first id after every range of a subid file, for a new 65536 range.
fn next_free_range(subids: &str) -> u64 {
    subids
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':').skip(1);
            Some(f.next()?.trim().parse::<u64>().ok()? + f.next()?.trim().parse::<u64>().ok()?)
        })
        .max()
        .unwrap_or(100_000)
        .max(100_000)
}

fn has_range(file: &str) -> bool {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with(&format!("{USER}:")))
}

/// Creates the user (once) and returns it, holding the shared lock.
pub fn user() -> RootlessUser {
    require("useradd", "passwd");
    require("setpriv", "util-linux");
    require("newuidmap", "uidmap");
    require("slirp4netns", "slirp4netns");
    let lock = lock_file();
    flock(&lock, FlockOperation::LockExclusive).expect("flock the rootless lock");
    if id("-u").is_none() {
        let ok = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", USER])
            .status()
            .expect("run useradd")
            .success();
        assert!(ok || id("-u").is_some(), "useradd {USER} failed");
    }
    for (file, flag) in [
        ("/etc/subuid", "--add-subuids"),
        ("/etc/subgid", "--add-subgids"),
    ] {
        if !has_range(file) {
            let start = next_free_range(&std::fs::read_to_string(file).unwrap_or_default());
            let range = format!("{start}-{}", start + 65_535);
            let ok = Command::new("usermod")
                .args([flag, &range, USER])
                .status()
                .expect("run usermod")
                .success();
            assert!(ok, "usermod {flag} {range} {USER} failed");
        }
    }
    let uid = id("-u").expect("the test user's uid");
    let gid = id("-g").expect("the test user's gid");
    let home = PathBuf::from(format!("/home/{USER}"));
    let runtime_dir = PathBuf::from(format!("/tmp/ocibench-rl-run-{uid}"));
    std::fs::create_dir_all(&runtime_dir).expect("mkdir XDG_RUNTIME_DIR");
    rustix::fs::chown(
        &runtime_dir,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .expect("chown XDG_RUNTIME_DIR");
    std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700))
        .expect("chmod XDG_RUNTIME_DIR");
    // Downgrade to shared: other tests may use the user too.
    flock(&lock, FlockOperation::LockShared).expect("flock shared");
    RootlessUser {
        name: USER,
        uid,
        gid,
        home,
        runtime_dir,
        lock,
    }
}

impl RootlessUser {
    /// Gives the user the test context's files (cache, work dir, home).
    pub fn own(&self, ctx: &TestContext) {
        chown_tree(ctx.root(), self.uid, self.gid);
    }

    /// `PROGRAM ARGS` as the user, with only the variables a user's shell has
    /// and the test context's (cache, config dirs): HOME is the user's own, so
    /// podman keeps its storage under it.
    pub fn cmd(&self, ctx: &TestContext, program: &Path, args: &[&str]) -> Command {
        let mut c = command("setpriv", "util-linux");
        c.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
            "--init-groups",
            "--",
        ])
        .arg(program)
        .args(args)
        .env_clear()
        .current_dir(&ctx.work_dir)
        .stdin(std::process::Stdio::null())
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", &self.home)
        .env("USER", self.name)
        .env("LOGNAME", self.name)
        .env("XDG_RUNTIME_DIR", &self.runtime_dir)
        .env("OCIBENCH_CACHE", &ctx.cache_dir)
        .env("NO_COLOR", "1")
        .env("NO_PROXY", "127.0.0.1,localhost,::1");
        c
    }

    /// `ocibench ARGS` as the user.
    pub fn ocibench(&self, ctx: &TestContext, args: &[&str]) -> Command {
        self.cmd(ctx, Path::new(env!("CARGO_BIN_EXE_ocibench")), args)
    }

    /// `podman ARGS` as the user.
    pub fn podman(&self, ctx: &TestContext, args: &[&str]) -> Command {
        require("podman", "podman");
        self.cmd(ctx, Path::new("podman"), args)
    }

    /// Names of the user's containers, any state (`podman ps -a`).
    pub fn containers(&self, ctx: &TestContext) -> Vec<String> {
        let out = self
            .podman(ctx, &["ps", "-a", "--format", "{{.Names}}"])
            .output()
            .expect("podman ps as the test user");
        assert!(
            out.status.success(),
            "podman ps -a as {USER}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for RootlessUser {
    fn drop(&mut self) {
        // Last one out (no other holder): reset the user's podman.
        let _ = flock(&self.lock, FlockOperation::Unlock);
        if flock(&self.lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = Command::new("setpriv")
                .args([
                    "--reuid",
                    &self.uid.to_string(),
                    "--regid",
                    &self.gid.to_string(),
                    "--init-groups",
                    "--",
                    "podman",
                    "system",
                    "reset",
                    "--force",
                ])
                .env_clear()
                .current_dir("/")
                .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
                .env("HOME", &self.home)
                .env("XDG_RUNTIME_DIR", &self.runtime_dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            let _ = flock(&self.lock, FlockOperation::Unlock);
        }
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let _ = rustix::fs::chown(
        path,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    );
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_new_range_starts_after_every_range() {
        assert_eq!(
            super::next_free_range("a:100000:65536\nb:165536:65536\n"),
            231_072
        );
        assert_eq!(super::next_free_range(""), 100_000);
    }
}
