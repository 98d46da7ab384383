//! Layers checked by independent tools: GNU tar lists and extracts them,
//! gzip and sha256sum confirm the sizes and digests ocibench reports, and
//! the blob store keeps them (or, on error, nothing).
//!
//! Needs the Debian packages `tar`, `gzip`, `coreutils` and `diffutils` (always present).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ocibench::oci::build::layer::{LayerBuilder, LayerError, LayerStats};
use ocibench::oci::digest::Digest;
use ocibench::oci::store::BlobStore;
use ocibench::progress::NoProgress;

use crate::support::tools::{listing, run, run_stdout};

const EPOCH: u64 = 1_700_000_000;

fn sh(script: &str) -> Vec<u8> {
    run(Command::new("sh").arg("-c").arg(script)).stdout
}

fn write(path: &Path, content: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn long_dir() -> String {
    format!("{}/{}", "l".repeat(70), "o".repeat(60))
}

type Step = Box<dyn Fn(&Path)>;

/// The tricky tree. `reverse` creates entries in the opposite order, so that
/// directory listings (readdir order) differ between two copies.
fn tricky_tree(root: &Path, reverse: bool) {
    let mut steps: Vec<Step> = vec![
        Box::new(|r| write(&r.join("bin/run"), b"#!/bin/sh\necho hi\n", 0o755)),
        Box::new(|r| write(&r.join("bin/su-ish"), b"setuid", 0o4755)),
        Box::new(|r| write(&r.join("etc/conf"), b"key = value\n", 0o640)),
        Box::new(|r| fs::hard_link(r.join("etc/conf"), r.join("etc/conf.hardlink")).unwrap()),
        Box::new(|r| {
            fs::create_dir_all(r.join("bin")).unwrap();
            symlink("../etc/conf", r.join("bin/conf-link")).unwrap();
        }),
        Box::new(|r| symlink("/does/not/exist", r.join("dangling")).unwrap()),
        Box::new(|r| {
            // 150 bytes: over ustar's 100-byte name field.
            let p = r.join(long_dir()).join("f".repeat(19));
            write(&p, b"long path", 0o644);
        }),
        Box::new(|r| write(&r.join("café/naïve.txt"), "ünïcødé".as_bytes(), 0o644)),
        Box::new(|r| {
            fs::create_dir_all(r.join("var/empty")).unwrap();
            fs::set_permissions(r.join("var/empty"), fs::Permissions::from_mode(0o1777)).unwrap();
        }),
        Box::new(|r| write(&r.join("data/blob"), &pseudo_random(300_000), 0o600)),
    ];
    if reverse {
        steps.reverse();
        // The hard link needs its target first.
        let n = steps.len();
        steps.swap(n - 3, n - 4);
    }
    fs::create_dir_all(root).unwrap();
    for s in &steps {
        s(root);
    }
}

fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Sets every mtime in the tree (symlinks included) to `secs`.
fn set_mtimes(root: &Path, secs: i64) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        let t = libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        let times = [t, t];
        // SAFETY: valid path and a two-element timespec array.
        let rc = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        assert_eq!(rc, 0, "utimensat {}", p.display());
    }
}

fn build_file(b: &LayerBuilder, path: &Path) -> LayerStats {
    let f = fs::File::create(path).unwrap();
    b.write_to(std::io::BufWriter::new(f), &NoProgress).unwrap()
}

/// `ls -l`-style permission string, as GNU tar prints it.
fn perm_string(kind: char, mode: u32) -> String {
    let mut s = String::new();
    s.push(kind);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, c)) in bits.iter().enumerate() {
        let special = match i {
            2 => mode & 0o4000 != 0,
            5 => mode & 0o2000 != 0,
            8 => mode & 0o1000 != 0,
            _ => false,
        };
        let set = mode & bit != 0;
        s.push(match (special, set, i) {
            (true, true, 8) => 't',
            (true, false, 8) => 'T',
            (true, true, _) => 's',
            (true, false, _) => 'S',
            (false, true, _) => *c,
            (false, false, _) => '-',
        });
    }
    s
}

/// What `tar -tv` should print for the source tree placed at `dest` (relative, ending in `/`).
fn expected_listing(src: &Path, dest: &str, date: &str) -> Vec<String> {
    struct E {
        name: String,
        kind: char,
        mode: u32,
        size: u64,
        link: Option<String>,
        inode: Option<(u64, u64)>,
    }
    let mut entries = Vec::new();
    // Parents of DEST, synthesized with 0755.
    let mut acc = String::new();
    let parts: Vec<&str> = dest.trim_end_matches('/').split('/').collect();
    for p in &parts[..parts.len() - 1] {
        acc.push_str(p);
        acc.push('/');
        entries.push(E {
            name: acc.clone(),
            kind: 'd',
            mode: 0o755,
            size: 0,
            link: None,
            inode: None,
        });
    }
    fn walk(path: &Path, name: String, entries: &mut Vec<E>) {
        let meta = fs::symlink_metadata(path).unwrap();
        let ft = meta.file_type();
        let mode = meta.mode() & 0o7777;
        if ft.is_dir() {
            let name = if name.ends_with('/') {
                name
            } else {
                format!("{name}/")
            };
            for e in fs::read_dir(path).unwrap() {
                let e = e.unwrap();
                let child = e.file_name().into_string().unwrap();
                walk(&e.path(), format!("{name}{child}"), entries);
            }
            entries.push(E {
                name,
                kind: 'd',
                mode,
                size: 0,
                link: None,
                inode: None,
            });
        } else if ft.is_symlink() {
            let target = fs::read_link(path).unwrap();
            entries.push(E {
                name,
                kind: 'l',
                mode,
                size: 0,
                link: Some(format!("-> {}", target.to_str().unwrap())),
                inode: None,
            });
        } else {
            entries.push(E {
                name,
                kind: '-',
                mode,
                size: meta.len(),
                link: None,
                inode: (meta.nlink() > 1).then(|| (meta.dev(), meta.ino())),
            });
        }
    }
    walk(src, dest.to_string(), &mut entries);
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut first: HashMap<(u64, u64), String> = HashMap::new();
    for e in &mut entries {
        if let Some(ino) = e.inode {
            if let Some(f) = first.get(&ino) {
                e.kind = 'h';
                e.size = 0;
                e.link = Some(format!("link to {f}"));
            } else {
                first.insert(ino, e.name.clone());
            }
        }
    }
    entries
        .iter()
        .map(|e| {
            let mut line = format!(
                "{} 0/0 {} {date} {}",
                perm_string(e.kind, e.mode),
                e.size,
                e.name
            );
            if let Some(l) = &e.link {
                line.push(' ');
                line.push_str(l);
            }
            line
        })
        .collect()
}

/// `tar -tv` output with the column padding collapsed.
fn tar_listing(blob: &Path) -> Vec<String> {
    let out = run_stdout(
        Command::new("tar")
            .env("TZ", "UTC")
            .args([
                "--numeric-owner",
                "--full-time",
                "--quoting-style=literal",
                "-tvzf",
            ])
            .arg(blob),
    );
    out.lines()
        .map(|l| {
            // perms owner size date time rest
            let mut rest = l;
            let mut fields = Vec::new();
            for _ in 0..5 {
                rest = rest.trim_start();
                let end = rest.find(' ').unwrap();
                fields.push(&rest[..end]);
                rest = &rest[end..];
            }
            format!("{} {}", fields.join(" "), rest.trim_start())
        })
        .collect()
}

fn epoch_date(epoch: u64) -> String {
    let out = run_stdout(Command::new("date").args([
        "-u",
        "-d",
        &format!("@{epoch}"),
        "+%Y-%m-%d %H:%M:%S",
    ]));
    out.trim().to_string()
}

#[test]
fn gnu_tar_lists_exactly_the_source() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tricky_tree(&src, false);
    let blob = t.path().join("layer.tar.gz");
    let stats = build_file(
        LayerBuilder::new().add(&src, "/opt/app").mtime(EPOCH),
        &blob,
    );
    let got = tar_listing(&blob);
    let want = expected_listing(&src, "opt/app/", &epoch_date(EPOCH));
    assert_eq!(got, want);
    assert!(got.iter().any(|l| l.contains(&long_dir())), "150-byte path");
    assert!(got.iter().any(|l| l.starts_with("-rwsr-xr-x")), "setuid");
    assert!(
        got.iter()
            .any(|l| l.starts_with("h") && l.ends_with("link to opt/app/etc/conf"))
    );
    assert!(
        got.iter()
            .any(|l| l.ends_with("dangling -> /does/not/exist"))
    );
    assert!(
        got.iter()
            .any(|l| l.starts_with("drwxrwxrwt") && l.ends_with("var/empty/"))
    );

    // Sizes and digests as independent tools see them.
    let blob_s = blob.to_str().unwrap();
    let wc = sh(&format!("gzip -dc '{blob_s}' | wc -c"));
    assert_eq!(
        String::from_utf8(wc).unwrap().trim(),
        stats.uncompressed_bytes.to_string()
    );
    let diff_id = sh(&format!("gzip -dc '{blob_s}' | sha256sum"));
    assert_eq!(
        format!("sha256:{}", &String::from_utf8(diff_id).unwrap()[..64]),
        stats.diff_id.to_string()
    );
    assert_eq!(Digest::of(&fs::read(&blob).unwrap()), stats.digest);
    assert_eq!(fs::metadata(&blob).unwrap().len(), stats.compressed_bytes);
    // No trailing garbage, one member: gzip -t agrees.
    run(Command::new("gzip").arg("-t").arg(&blob));

    // Extracted by GNU tar, the tree is the source again (contents, links).
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&blob)
        .arg("-C")
        .arg(&out));
    run(Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(&src)
        .arg(out.join("opt/app")));
    let a = fs::metadata(out.join("opt/app/etc/conf")).unwrap();
    let b = fs::metadata(out.join("opt/app/etc/conf.hardlink")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard link pair restored");
    assert_eq!(
        fs::metadata(out.join("opt/app/bin/run")).unwrap().mtime(),
        EPOCH as i64
    );
}

#[test]
fn tar_order_is_bytewise() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tricky_tree(&src, true);
    let blob = t.path().join("layer.tar.gz");
    build_file(LayerBuilder::new().add(&src, "/"), &blob);
    let names = run_stdout(
        Command::new("tar")
            .args(["--quoting-style=literal", "-tzf"])
            .arg(&blob),
    );
    let names: Vec<&str> = names.lines().collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(names, sorted);
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with('/') && !n.starts_with("./"))
    );
    assert!(names.contains(&"café/naïve.txt"));
}

#[test]
fn same_inputs_same_digest() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    let b = t.path().join("some/other/place");
    tricky_tree(&a, false);
    tricky_tree(&b, true);
    set_mtimes(&a, 1_000_000);
    set_mtimes(&b, 2_000_000_000);
    // Other owners too, where we may change them (root; CI runs as root).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        run(Command::new("chown")
            .args(["-R", "-h", "1234:5678"])
            .arg(&b));
        // chown clears setuid; the permission bits must stay equal.
        fs::set_permissions(b.join("bin/su-ish"), fs::Permissions::from_mode(0o4755)).unwrap();
    }
    let layer = |src: &Path, epoch: u64, threads: usize| {
        let mut out = Vec::new();
        LayerBuilder::new()
            .add(src, "/app")
            .mtime(epoch)
            .threads(threads)
            .write_to(&mut out, &NoProgress)
            .unwrap()
    };
    let sa = layer(&a, EPOCH, 1);
    let sb = layer(&b, EPOCH, 2);
    assert_eq!(sa, sb);
    assert_eq!(sa, layer(&b, EPOCH, 8));
    let other = layer(&a, EPOCH + 1, 2);
    assert_ne!(sa.digest, other.digest);
    assert_ne!(sa.diff_id, other.diff_id);
    assert_eq!(sa.uncompressed_bytes, other.uncompressed_bytes);
}

#[test]
fn store_keeps_blob_and_meta() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tricky_tree(&src, false);
    let store = BlobStore::open(t.path().join("store")).unwrap();
    let stats = LayerBuilder::new()
        .add(&src, "/app")
        .write_to_store(&store, &NoProgress)
        .unwrap();
    assert_eq!(store.blob_size(&stats.digest), Some(stats.compressed_bytes));
    let meta = store
        .layer_meta(&stats.digest)
        .expect("layer meta recorded");
    assert_eq!(meta.diff_id, stats.diff_id);
    assert_eq!(meta.uncompressed_bytes, stats.uncompressed_bytes);
    assert_eq!(
        Digest::of(&store.read_blob(&stats.digest).unwrap()),
        stats.digest
    );
    // Writing it again is harmless and gives the same blob.
    let again = LayerBuilder::new()
        .add(&src, "/app")
        .write_to_store(&store, &NoProgress)
        .unwrap();
    assert_eq!(again, stats);
    assert_eq!(
        blob_dir_entries(&store),
        vec![stats.digest.hex().to_string()]
    );
}

fn blob_dir_entries(store: &BlobStore) -> Vec<String> {
    listing(&store.root().join("blobs/sha256"))
}

#[test]
fn failed_build_leaves_nothing_in_the_store() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    tricky_tree(&src, false);
    // Sorted after most of the tree, so the failure comes mid-stream.
    let fifo = src.join("zz-pipe");
    run(Command::new("mkfifo").arg(&fifo));
    let store = BlobStore::open(t.path().join("store")).unwrap();
    let err = LayerBuilder::new()
        .add(&src, "/app")
        .write_to_store(&store, &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, LayerError::Unsupported { ref path, .. } if *path == fifo),
        "{err}"
    );
    assert!(err.to_string().contains("zz-pipe") && err.to_string().contains("FIFO"));
    assert!(blob_dir_entries(&store).is_empty(), "no blob, no temp file");
    assert_eq!(
        fs::read_dir(store.root().join("ocibench/layers"))
            .unwrap()
            .count(),
        0
    );

    let err = LayerBuilder::new()
        .add(t.path().join("nope"), "/app")
        .write_to_store(&store, &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(blob_dir_entries(&store).is_empty());
}

#[test]
fn unreadable_file_is_named() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root reads everything: permission bits cannot make a file unreadable here.
        eprintln!("skipped: running as root, permission denied cannot be produced");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let secret = t.path().join("src/secret");
    write(&secret, b"x", 0o000);
    let err = LayerBuilder::new()
        .add(t.path().join("src"), "/app")
        .write_to(std::io::sink(), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, LayerError::Read { ref path, .. } if *path == secret),
        "{err}"
    );
}

#[test]
fn nix_style_many_store_paths_in_one_layer() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("nix/store");
    let mut b = LayerBuilder::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    for name in ["zzz-hello-2.12", "aaa-glibc-2.38", "mmm-bash-5.2"] {
        let p = store.join(name);
        write(&p.join("bin/x"), name.as_bytes(), 0o555);
        paths.push(p);
    }
    symlink("/nix/store/aaa-glibc-2.38/bin/x", store.join("lll-link")).unwrap();
    paths.push(store.join("lll-link"));
    for p in &paths {
        let dest = format!("/nix/store/{}", p.file_name().unwrap().to_str().unwrap());
        b.add(p, &dest);
    }
    let blob = t.path().join("layer.tar.gz");
    build_file(&b, &blob);
    let names = run_stdout(Command::new("tar").arg("-tzf").arg(&blob));
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        [
            "nix/",
            "nix/store/",
            "nix/store/aaa-glibc-2.38/",
            "nix/store/aaa-glibc-2.38/bin/",
            "nix/store/aaa-glibc-2.38/bin/x",
            "nix/store/lll-link",
            "nix/store/mmm-bash-5.2/",
            "nix/store/mmm-bash-5.2/bin/",
            "nix/store/mmm-bash-5.2/bin/x",
            "nix/store/zzz-hello-2.12/",
            "nix/store/zzz-hello-2.12/bin/",
            "nix/store/zzz-hello-2.12/bin/x",
        ]
    );
}

/// Over 8 GiB needs PAX `size`. Slow in debug builds: `cargo test --release -- --ignored`.
#[test]
#[ignore]
fn file_over_8_gib() {
    let t = tempfile::tempdir().unwrap();
    let big = t.path().join("src/big");
    fs::create_dir_all(big.parent().unwrap()).unwrap();
    let f = fs::File::create(&big).unwrap();
    let size = (8u64 << 30) + 4097;
    f.set_len(size).unwrap(); // sparse
    let blob = t.path().join("big.tar.gz");
    let stats = build_file(
        LayerBuilder::new().add(t.path().join("src"), "/").level(1),
        &blob,
    );
    let listing = tar_listing(&blob);
    assert_eq!(listing.len(), 1);
    assert!(listing[0].contains(&format!(" {size} ")), "{listing:?}");
    assert!(stats.uncompressed_bytes > size);
    let mut gz = Command::new("gzip")
        .arg("-t")
        .arg(&blob)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(gz.wait().unwrap().success());
    std::io::stdout().flush().unwrap();
}

#[test]
fn non_utf8_names_survive_gnu_tar() {
    use std::ffi::OsStr;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let name = OsStr::from_bytes(b"bad\xffname");
    write(&src.join(name), b"x", 0o644);
    symlink(OsStr::from_bytes(b"tgt\xfe"), src.join("lnk")).unwrap();
    let blob = t.path().join("layer.tar.gz");
    build_file(LayerBuilder::new().add(&src, "/d"), &blob);
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    let res = Command::new("tar")
        .arg("-xzf")
        .arg(&blob)
        .arg("-C")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success() && res.stderr.is_empty(),
        "GNU tar: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(fs::read(out.join("d").join(name)).unwrap(), b"x");
    assert_eq!(
        fs::read_link(out.join("d/lnk"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"tgt\xfe"
    );
}
