//! Root filesystems for fixture images, written as plain directories with `std::fs`
//! (never with ocibench's code): a busybox-static root, a small app, and a placeholder
//! for foreign platforms.

use std::path::{Path, PathBuf};

/// The text `/www/index.html` of the busybox fixture serves.
pub const INDEX_HTML: &str = "<h1>ocibench fixture</h1>\n";
/// The port the busybox fixture's `httpd` listens on (its `Cmd`).
pub const HTTPD_PORT: u16 = 8080;

/// Fills `dir` with a minimal busybox root: `/bin/busybox` (busybox-static) and applet
/// symlinks, `/www/index.html`, `/etc/passwd` and `/etc/group` with root, `/tmp`.
pub fn busybox_rootfs(dir: &Path) {
    let busybox = static_busybox();
    let bin = dir.join("bin");
    for d in ["bin", "etc", "www", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy(&busybox, bin.join("busybox")).expect("copy busybox");
    for applet in [
        "sh", "httpd", "cat", "echo", "ls", "env", "sleep", "true", "false", "mkdir", "rm", "id",
        "uname", "wget", "grep", "head", "ps",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("symlink applet");
    }
    std::fs::write(dir.join("www/index.html"), INDEX_HTML).expect("write index.html");
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("write passwd");
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
    set_modes(dir);
    set_mode(&dir.join("tmp"), 0o1777);
    set_mode(&bin.join("busybox"), 0o755);
}

/// Fills `dir` with a small application layer: `/app/hello.txt`, an executable
/// `/app/run.sh`, `/app/data/numbers.txt` (a few KiB) and a symlink `/app/current`.
pub fn app_rootfs(dir: &Path) {
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("data")).expect("mkdir app");
    std::fs::write(app.join("hello.txt"), "hello from the app layer\n").expect("write");
    std::fs::write(
        app.join("run.sh"),
        "#!/bin/sh\nexec httpd -f -p 8080 -h /www\n",
    )
    .expect("write run.sh");
    let numbers: String = (0..2000).map(|i| format!("{i}\n")).collect();
    std::fs::write(app.join("data/numbers.txt"), numbers).expect("write numbers");
    std::os::unix::fs::symlink("hello.txt", app.join("current")).expect("symlink");
    set_modes(dir);
    set_mode(&app.join("run.sh"), 0o755);
}

/// A placeholder root for a foreign platform (never run): a text file where the
/// binary would be, so its layer differs from the amd64 one.
pub fn placeholder_rootfs(dir: &Path, platform: &str) {
    std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
    std::fs::write(
        dir.join("bin/busybox"),
        format!("placeholder for {platform}: this fixture layer is not meant to run\n"),
    )
    .expect("write placeholder");
    set_modes(dir);
}

/// The busybox-static binary; panics if only a dynamic busybox is installed.
pub fn static_busybox() -> PathBuf {
    let path = PathBuf::from("/bin/busybox");
    let bytes = std::fs::read(&path).unwrap_or_else(|_| {
        panic!("missing /bin/busybox: install the Debian package busybox-static (scripts/install-deps.sh does)")
    });
    assert!(
        is_static_elf(&bytes),
        "/bin/busybox is dynamically linked: install the Debian package busybox-static"
    );
    path
}

/// True for an ELF64 without a `PT_INTERP` program header (no dynamic loader).
fn is_static_elf(b: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) != 3
    })
}

/// Directories 0755 and regular files 0644 (umask-independent), recursively.
pub fn set_modes(dir: &Path) {
    set_mode(dir, 0o755);
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("dir entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        if meta.is_dir() {
            set_modes(&path);
        } else if meta.is_file() {
            set_mode(&path, 0o644);
        }
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
