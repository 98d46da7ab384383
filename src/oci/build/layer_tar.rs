//! Tar headers for layers, written by hand: ustar plus PAX extended records.
//!
//! A layer's bytes must be a pure function of its inputs, so every header field
//! is decided here rather than by a library default: uid/gid 0, empty user and
//! group names, no atime/ctime, no xattrs, fixed PAX header name. PAX `path`,
//! `linkpath`, `size` and `mtime` records are used exactly when the ustar field
//! cannot hold the value (names over 100 bytes or not ASCII, sizes of 8 GiB and
//! more), as Go's `archive/tar` (Docker, buildkit) does. Names are bytes: a
//! non-UTF-8 name goes into its PAX record unchanged, as Go writes it and as
//! GNU tar restores it.

use std::io::{self, Write};

/// Tar's block size.
pub const BLOCK: usize = 512;
/// The largest value an 11-digit octal field holds (8 GiB - 1).
const MAX_OCTAL_11: u64 = 0o777_7777_7777;
/// Name of the PAX extended header pseudo-entries (fixed: no pid, no path).
const PAX_NAME: &[u8] = b"././@PaxHeader";

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    HardLink,
    Symlink,
    Dir,
}

impl EntryKind {
    fn typeflag(self) -> u8 {
        match self {
            EntryKind::File => b'0',
            EntryKind::HardLink => b'1',
            EntryKind::Symlink => b'2',
            EntryKind::Dir => b'5',
        }
    }
}

/// One entry's header fields. `name` is relative (no leading `/`); directories end with `/`.
#[derive(Debug, Clone, Copy)]
pub struct TarHeader<'a> {
    pub name: &'a [u8],
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Content length; 0 for everything but files.
    pub size: u64,
    pub mtime: u64,
    /// Target of a symlink or hard link; empty otherwise.
    pub link: &'a [u8],
}

/// Writes `h` (preceded by a PAX header when needed). Returns the bytes written.
pub fn write_header(out: &mut impl Write, h: &TarHeader<'_>) -> io::Result<u64> {
    let mut pax = Vec::new();
    let long_name = needs_pax(h.name);
    let long_link = needs_pax(h.link);
    if long_name {
        pax_record(&mut pax, b"path", h.name);
    }
    if long_link {
        pax_record(&mut pax, b"linkpath", h.link);
    }
    if h.size > MAX_OCTAL_11 {
        pax_record(&mut pax, b"size", h.size.to_string().as_bytes());
    }
    if h.mtime > MAX_OCTAL_11 {
        pax_record(&mut pax, b"mtime", h.mtime.to_string().as_bytes());
    }
    let mut written = 0;
    if !pax.is_empty() {
        let mtime = h.mtime.min(MAX_OCTAL_11);
        let block = ustar_block(PAX_NAME, b'x', 0o644, pax.len() as u64, mtime, b"");
        out.write_all(&block)?;
        out.write_all(&pax)?;
        let pad = padding(pax.len() as u64);
        out.write_all(&[0u8; BLOCK][..pad])?;
        written += (BLOCK + pax.len() + pad) as u64;
    }
    // Values that did not fit are in the PAX records; the ustar fields get
    // a truncated name and zeros, which PAX readers ignore.
    let name = if long_name { truncate(h.name) } else { h.name };
    let link = if long_link { truncate(h.link) } else { h.link };
    let size = if h.size > MAX_OCTAL_11 { 0 } else { h.size };
    let mtime = if h.mtime > MAX_OCTAL_11 { 0 } else { h.mtime };
    out.write_all(&ustar_block(
        name,
        h.kind.typeflag(),
        h.mode & 0o7777,
        size,
        mtime,
        link,
    ))?;
    Ok(written + BLOCK as u64)
}

/// Zero bytes needed after `size` bytes of content to reach a block boundary.
pub fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// The end-of-archive marker: two zero blocks (no padding to a 10 KiB record,
/// as Go's `archive/tar` writes).
pub fn write_end(out: &mut impl Write) -> io::Result<u64> {
    out.write_all(&[0u8; 2 * BLOCK])?;
    Ok(2 * BLOCK as u64)
}

/// A name goes to PAX when the 100-byte field cannot hold it or it is not ASCII
/// (PAX names are UTF-8 by definition; ustar's charset is unspecified).
fn needs_pax(s: &[u8]) -> bool {
    s.len() > 100 || !s.is_ascii()
}

fn truncate(s: &[u8]) -> &[u8] {
    &s[..s.len().min(100)]
}

/// Appends one `"<len> <key>=<value>\n"` record; `len` counts the whole record, itself included.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Writes `v` as zero-padded octal filling `field` but its last byte, which is NUL.
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    debug_assert!(
        s.len() == digits,
        "{v} does not fit in {digits} octal digits"
    );
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

fn ustar_block(
    name: &[u8],
    typeflag: u8,
    mode: u32,
    size: u64,
    mtime: u64,
    link: &[u8],
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    octal(&mut b[100..108], u64::from(mode));
    octal(&mut b[108..116], 0); // uid
    octal(&mut b[116..124], 0); // gid
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], mtime);
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    // uname, gname: empty. devmajor, devminor:
    octal(&mut b[329..337], 0);
    octal(&mut b[337..345], 0);
    // The checksum is computed with its own field as spaces.
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let s = format!("{sum:06o}");
    b[148..154].copy_from_slice(s.as_bytes());
    b[154] = 0;
    b[155] = b' ';
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &[u8], kind: EntryKind, size: u64, link: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let h = TarHeader {
            name,
            kind,
            mode: 0o4755,
            size,
            mtime: 1_700_000_000,
            link,
        };
        let n = write_header(&mut out, &h).unwrap();
        assert_eq!(n as usize, out.len());
        out
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut v = Vec::new();
        pax_record(&mut v, b"path", b"a");
        assert_eq!(v, b"9 path=a\n");
        // 95 + 3 digits would be 98 with 2 digits but 99 with 3: the loop must settle.
        let long = vec![b'x'; 89];
        let mut v = Vec::new();
        pax_record(&mut v, b"path", &long);
        let (len, _) = std::str::from_utf8(&v).unwrap().split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), v.len());
    }

    #[test]
    fn short_ascii_names_are_plain_ustar() {
        let h = header(b"app/server.py", EntryKind::File, 5, b"");
        assert_eq!(h.len(), BLOCK);
        assert_eq!(&h[..13], b"app/server.py");
        assert_eq!(&h[100..108], b"0004755\0");
        assert_eq!(&h[108..124], b"0000000\x000000000\x00");
        assert_eq!(&h[124..136], b"00000000005\0");
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert!(h[265..329].iter().all(|&b| b == 0), "uname/gname empty");
    }

    #[test]
    fn long_and_unicode_names_use_pax() {
        let long = [b'd'; 150];
        let h = header(&long, EntryKind::Symlink, 0, "café".as_bytes());
        assert_eq!(h.len(), 3 * BLOCK);
        assert_eq!(h[156], b'x');
        let records = std::str::from_utf8(&h[BLOCK..2 * BLOCK]).unwrap();
        assert!(records.contains(&format!("path={}\n", "d".repeat(150))));
        assert!(records.contains("linkpath=café\n"));
        assert_eq!(h[2 * BLOCK + 156], b'2');
    }

    #[test]
    fn huge_sizes_use_pax() {
        let h = header(b"big", EntryKind::File, 9 << 30, b"");
        assert_eq!(h[156], b'x');
        let records = std::str::from_utf8(&h[BLOCK..2 * BLOCK]).unwrap();
        assert!(records.contains(&format!("size={}\n", 9u64 << 30)));
        assert_eq!(&h[2 * BLOCK + 124..2 * BLOCK + 136], b"00000000000\0");
    }

    #[test]
    fn tar_crate_reads_what_we_write() {
        let mut out = Vec::new();
        let long = format!("{}/file.txt", "x".repeat(120));
        for (name, kind, size, link) in [
            ("dir/", EntryKind::Dir, 0u64, ""),
            (long.as_str(), EntryKind::File, 3, ""),
            ("naïve", EntryKind::HardLink, 0, long.as_str()),
        ] {
            let h = TarHeader {
                name: name.as_bytes(),
                kind,
                mode: 0o755,
                size,
                mtime: 42,
                link: link.as_bytes(),
            };
            write_header(&mut out, &h).unwrap();
            if size > 0 {
                out.extend_from_slice(b"abc");
                out.extend(std::iter::repeat_n(0, padding(size)));
            }
        }
        write_end(&mut out).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let got: Vec<_> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.entry_type(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    e.link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, "dir/");
        assert!(got[0].1.is_dir());
        assert_eq!(got[1].0, long);
        assert_eq!(got[1].3, 42);
        assert_eq!(got[2].0, "naïve");
        assert!(got[2].1.is_hard_link());
        assert_eq!(got[2].4.as_deref(), Some(long.as_str()));
    }
}
