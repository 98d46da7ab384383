//! An output is whole or absent: a build whose `oci:` output runs out of space
//! (a 1 MiB tmpfs, mounted for the test) leaves no skeleton layout, and an
//! existing layout it was adding to keeps exactly what it held. Debris of a killed
//! export (`FILE.tmp-*` beside an archive) is swept by the next export when no
//! process holds it, and kept while one does.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::tools::listing;
use crate::support::{TestContext, run};

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()));
        Tmpfs { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A directory holding `bytes` of incompressible data (so its layer is that big).
fn noisy_app(ctx: &TestContext, name: &str, bytes: usize, seed: u32) -> PathBuf {
    let dir = ctx.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut data = vec![0u8; bytes];
    let mut x = seed;
    for b in &mut data {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    std::fs::write(dir.join("noise.bin"), data).unwrap();
    dir
}

/// Fills `dir`'s file system but for about `leave` bytes.
fn fill(dir: &Path, leave: u64) {
    let out = run(Command::new("df").args(["-B1", "--output=avail"]).arg(dir));
    let avail: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::fs::write(dir.join("filler"), vec![1u8; (avail - leave) as usize]).unwrap();
}

fn build(ctx: &TestContext, app: &Path, output: &str) -> crate::support::Output {
    ctx.run([
        "build",
        "--from",
        "scratch",
        "--layer",
        &format!("{}:/app", app.display()),
        "--output",
        output,
    ])
}

#[test]
fn a_full_disk_leaves_no_oci_output() {
    let ctx = TestContext::new();
    let big = noisy_app(&ctx, "big", 300 * 1024, 1);
    let fs = Tmpfs::mount("1m");
    fill(fs.path(), 100 * 1024);
    let out = fs.path().join("out");
    build(&ctx, &big, &format!("oci:{}", out.display()))
        .failure(1)
        .stderr_contains("No space left on device");
    assert_eq!(listing(fs.path()), ["filler"], "no output, no temporaries");
}

#[test]
fn a_full_disk_keeps_an_existing_layout_as_it_was() {
    let ctx = TestContext::new();
    let small = noisy_app(&ctx, "small", 1000, 2);
    let big = noisy_app(&ctx, "big", 300 * 1024, 3);
    let fs = Tmpfs::mount("1m");
    let out = fs.path().join("out");
    let dest = format!("oci:{}:small", out.display());
    build(&ctx, &small, &dest).success();
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for sub in ["", "blobs/sha256"] {
            for name in listing(&dir.join(sub)) {
                let p = dir.join(sub).join(&name);
                if p.is_file() {
                    files.push((format!("{sub}/{name}"), std::fs::read(&p).unwrap()));
                }
            }
        }
        files
    };
    let before = snapshot(&out);
    fill(fs.path(), 100 * 1024);
    build(&ctx, &big, &format!("oci:{}:big", out.display()))
        .failure(1)
        .stderr_contains("No space left on device");
    assert_eq!(snapshot(&out), before, "the layout holds what it held");
    assert_eq!(listing(fs.path()), ["filler", "out"]);
}

#[test]
fn outputs_are_world_readable() {
    let ctx = TestContext::new();
    let app = noisy_app(&ctx, "app", 1000, 4);
    build(&ctx, &app, "oci:layout").success();
    build(&ctx, &app, "oci-archive:image.tar").success();
    let layout = ctx.path("layout");
    for d in [
        layout.clone(),
        layout.join("blobs"),
        layout.join("blobs/sha256"),
    ] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{}", d.display());
    }
    for name in listing(&layout.join("blobs/sha256")) {
        let p = layout.join("blobs/sha256").join(name);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
    for p in [layout.join("index.json"), ctx.path("image.tar")] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "{}", p.display());
    }
}

#[test]
fn debris_beside_an_archive_is_swept_unless_a_process_holds_it() {
    let ctx = TestContext::new();
    let app = noisy_app(&ctx, "app", 1000, 5);
    let dead = ctx.path("image.tar.tmp-dead01");
    std::fs::write(&dead, b"half an archive").unwrap();
    let live = ctx.path("image.tar.tmp-live01");
    let held = std::fs::File::create(&live).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    build(&ctx, &app, "oci-archive:image.tar").success();
    assert!(!dead.exists(), "a killed export's temp file is swept");
    assert!(live.exists(), "a temp file a live process holds is kept");
    drop(held);
}
