//! zstd layers (`application/vnd.oci.image.layer.v1.tar+zstd`): reading them for a
//! pull's diff_id pass and an export, and writing them for `build --compression zstd`.
//!
//! Both sides are libzstd through the `zstd` crate, which bundles the C library at
//! the version `Cargo.lock` pins (1.5.7 now) rather than linking the system's
//! (unless `ZSTD_SYS_USE_PKG_CONFIG` is set at build time), so the bytes a build
//! writes do not depend on what the machine has installed.
//!
//! Reading: a layer may be several frames (zstd:chunked writes one or more per file)
//! and skippable frames (zstd:chunked keeps its table of contents and footer in
//! them); libzstd's streaming decoder passes over skippable frames and joins the
//! rest, as `zstd -dc` does. Errors become `InvalidData` (corrupt) or
//! `UnexpectedEof` (cut short), the kinds the gzip reader gives.
//!
//! Writing is reproducible and multi-threaded. libzstd's multi-threaded mode cuts
//! the input into jobs whose size depends only on the compression parameters,
//! never on the worker count, so its output is the same for any `nbWorkers >= 1`;
//! single-threaded mode (`nbWorkers = 0`) writes different bytes (zstd(1) says as
//! much of `--single-thread` against `-T1`). So this writer always uses at least
//! one worker, even with one thread asked for: the bytes depend only on the input
//! and the level (tested: `same_bytes_for_any_worker_count`).

use std::io::{self, BufRead, Read, Write};

/// The default zstd level (zstd's own default, as `zstd` and podman use).
pub const DEFAULT_LEVEL: i32 = 3;
/// The highest level: 20 to 22 are zstd's "ultra" levels (`zstd --ultra`).
pub const MAX_LEVEL: i32 = 22;

/// Decompresses a zstd stream of any number of frames, skippable ones included.
pub struct ZstdReader<'a, R: BufRead> {
    inner: zstd::stream::read::Decoder<'a, R>,
}

impl<R: BufRead> ZstdReader<'_, R> {
    pub fn new(input: R) -> io::Result<Self> {
        Ok(ZstdReader {
            inner: zstd::stream::read::Decoder::with_buffer(input)?,
        })
    }
}

impl<R: BufRead> Read for ZstdReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out).map_err(|e| match e.kind() {
            // libzstd's codes ("Unknown frame descriptor", "Data corruption detected",
            // "Restored data doesn't match checksum", and "Frame requires too much
            // memory for decoding" for windows over libzstd's 128 MiB default, as
            // `zstd --long=31` writes) arrive as `Other`: invalid for us either way.
            io::ErrorKind::Other => {
                io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
            }
            io::ErrorKind::UnexpectedEof => {
                io::Error::new(io::ErrorKind::UnexpectedEof, "zstd stream ends early")
            }
            _ => e,
        })
    }
}

/// Options of a [`ZstdWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZstdOptions {
    /// 1 to [`MAX_LEVEL`]. Part of the layer's identity.
    pub level: i32,
    /// Compression workers (at least one is always used). Does not change the bytes.
    pub threads: usize,
}

/// Compresses into one zstd frame with a content checksum, on worker threads.
pub struct ZstdWriter<W: Write> {
    inner: zstd::stream::write::Encoder<'static, W>,
}

impl<W: Write> ZstdWriter<W> {
    pub fn new(out: W, opts: ZstdOptions) -> io::Result<Self> {
        let mut inner = zstd::stream::write::Encoder::new(out, opts.level)?;
        // At least one worker: see the module's header (0 writes other bytes).
        let workers = u32::try_from(opts.threads.max(1)).unwrap_or(u32::MAX);
        inner.multithread(workers)?;
        // The checksum lets a reader catch corruption in the data itself (zstd -dc
        // checks it), as gzip's CRC does; the CLI writes it by default too.
        inner.include_checksum(true)?;
        Ok(ZstdWriter { inner })
    }

    /// Ends the frame; returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.inner.finish()
    }
}

impl<W: Write> Write for ZstdWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::compress::pgzip::tests::test_bytes;

    fn compress(data: &[u8], level: i32, threads: usize, write_size: usize) -> Vec<u8> {
        let mut w = ZstdWriter::new(Vec::new(), ZstdOptions { level, threads }).unwrap();
        for chunk in data.chunks(write_size) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn decompress(z: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        ZstdReader::new(io::BufReader::with_capacity(4096, z))?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn same_bytes_for_any_worker_count_and_write_size() {
        // Large enough for several jobs at level 3 (libzstd's job size there is
        // a few MiB), so the workers really split the input.
        let data = test_bytes(24 << 20, 7);
        let one = compress(&data, DEFAULT_LEVEL, 1, 1 << 20);
        for (threads, write_size) in [(0, 1 << 20), (2, 65_536), (4, 1 << 20), (8, 3_000_001)] {
            let other = compress(&data, DEFAULT_LEVEL, threads, write_size);
            assert!(
                other == one,
                "{threads} threads, writes of {write_size}: {} bytes against {}",
                other.len(),
                one.len()
            );
        }
        assert!(decompress(&one).unwrap() == data);
        // Why workers are always on: libzstd without them (nbWorkers 0, what one
        // thread would otherwise mean) writes other bytes for the same input.
        let mut single = zstd::stream::write::Encoder::new(Vec::new(), DEFAULT_LEVEL).unwrap();
        single.include_checksum(true).unwrap();
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap();
        assert!(single != one, "single-threaded mode wrote the same bytes");
        // The level is part of the identity.
        assert_ne!(compress(&data[..1 << 20], 1, 2, 1 << 16), {
            compress(&data[..1 << 20], 9, 2, 1 << 16)
        });
    }

    #[test]
    fn several_frames_and_skippable_frames_read_as_one_stream() {
        let mut stream = compress(b"first ", 3, 1, 64);
        // A skippable frame (magic 0x184D2A50..=0x184D2A5F, little-endian length),
        // as zstd:chunked uses for its table of contents.
        stream.extend_from_slice(&0x184D_2A5Bu32.to_le_bytes());
        stream.extend_from_slice(&5u32.to_le_bytes());
        stream.extend_from_slice(b"TOC!!");
        stream.extend(compress(b"second", 19, 2, 64));
        assert_eq!(decompress(&stream).unwrap(), b"first second");
    }

    /// A frame declaring a 2 GiB window (`zstd --long=31` from a pipe) is refused
    /// rather than given 2 GiB: libzstd's 128 MiB default limit holds.
    #[test]
    fn a_window_over_128_mib_is_refused() {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        e.set_parameter(zstd::zstd_safe::CParameter::WindowLog(31))
            .unwrap();
        e.write_all(b"small data, huge declared window").unwrap();
        let z = e.finish().unwrap();
        let err = decompress(&z).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            "zstd: Frame requires too much memory for decoding"
        );
    }

    #[test]
    fn corrupt_and_truncated_streams_are_errors_of_the_gzip_kinds() {
        let data = test_bytes(300_000, 3);
        let z = compress(&data, 3, 1, 1 << 16);
        let mut body = z.clone();
        let mid = body.len() / 2;
        for b in &mut body[mid..mid + 16] {
            *b ^= 0xa5;
        }
        let mut magic = z.clone();
        magic[0] ^= 0xff;
        for (name, bad) in [("body", body), ("magic", magic)] {
            let err = decompress(&bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{name}: {err}");
            assert!(err.to_string().starts_with("zstd: "), "{err}");
        }
        for cut in [0, 3, z.len() / 2, z.len() - 1] {
            let err = decompress(&z[..cut]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut {cut}: {err}");
        }
    }
}
