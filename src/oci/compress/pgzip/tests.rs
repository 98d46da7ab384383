//! pgzip's tests: determinism across thread counts and levels, stored blocks for
//! incompressible input, the dictionary, errors and panics surfacing.

use super::*;
use flate2::read::{GzDecoder, MultiGzDecoder};
use std::io::Read;

/// Deterministic pseudo-random bytes (xorshift), partly compressible.
pub(crate) fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Every other run is text-like so that matches (and the dictionary) matter.
        if (x >> 60) & 1 == 0 {
            out.extend_from_slice(b"the quick brown fox jumps over the lazy dog ");
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

thread_local! {
    /// Makes `compress_block` start with 100 bytes of output space (on this thread).
    pub(crate) static TINY_SPACE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[test]
fn output_space_running_out_is_handled() {
    let data = test_bytes(3 * BLOCK_SIZE + 5, 8);
    TINY_SPACE.set(true);
    let tiny = gz(&data, 1, DEFAULT_LEVEL, 65536);
    TINY_SPACE.set(false);
    assert_eq!(gunzip(&tiny), data);
}

fn gz(data: &[u8], threads: usize, level: u32, chunk: usize) -> Vec<u8> {
    let mut w = ParallelGzip::with_options(Vec::new(), GzipOptions { level, threads }).unwrap();
    for c in data.chunks(chunk.max(1)) {
        w.write_all(c).unwrap();
    }
    w.finish().unwrap()
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut out).unwrap();
    let mut multi = Vec::new();
    MultiGzDecoder::new(gz).read_to_end(&mut multi).unwrap();
    assert_eq!(out, multi);
    out
}

#[test]
fn round_trips_edge_sizes() {
    for len in [
        0,
        1,
        DICT_SIZE,
        BLOCK_SIZE - 1,
        BLOCK_SIZE,
        BLOCK_SIZE + 1,
        3 * BLOCK_SIZE,
        3 * BLOCK_SIZE + 17,
    ] {
        let data = test_bytes(len, len as u64 + 1);
        let z = gz(&data, 2, DEFAULT_LEVEL, 10_000);
        assert_eq!(gunzip(&z), data, "length {len}");
    }
}

#[test]
fn same_bytes_for_any_thread_count_and_write_pattern() {
    let data = test_bytes(5 * BLOCK_SIZE + 1234, 42);
    let one = gz(&data, 1, DEFAULT_LEVEL, data.len());
    for (threads, chunk) in [(2, 1000), (8, 4096), (3, 1 << 20), (1, 7)] {
        assert_eq!(
            one,
            gz(&data, threads, DEFAULT_LEVEL, chunk),
            "{threads} threads"
        );
    }
    assert_eq!(gunzip(&one), data);
}

#[test]
fn compressor_history_does_not_leak() {
    // Tar-like input: zero runs between varied contents. A compressor
    // reused across blocks (zlib-rs 0.6 `reset`) made the output depend on
    // which blocks a thread had compressed before; 1 and 4 threads differed.
    let mut data = Vec::new();
    for i in 0..40 {
        data.extend_from_slice(&[0u8; 512]);
        data.extend_from_slice(&test_bytes(7000 * i, i as u64));
        data.resize(data.len().next_multiple_of(512), 0);
    }
    let one = gz(&data, 1, DEFAULT_LEVEL, 65536);
    assert_eq!(one, gz(&data, 4, DEFAULT_LEVEL, 65536));
    assert_eq!(gunzip(&one), data);
}

#[test]
fn every_level_is_deterministic() {
    // Mixed input: incompressible stretches grow the recycled output
    // buffers, compressible ones leave spare room; how much room a block
    // gets must not change its bytes (zlib's stored blocks size to it).
    let mut data = test_bytes(3 * BLOCK_SIZE, 2);
    let mut x = 99u64;
    data.extend((0..4 * BLOCK_SIZE).map(|_| {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        (x >> 56) as u8
    }));
    data.extend_from_slice(&test_bytes(5 * BLOCK_SIZE + 77, 3));
    for level in 0..=9 {
        let one = gz(&data, 1, level, 1 << 20);
        for threads in [2, 5] {
            assert_eq!(
                one,
                gz(&data, threads, level, 8192),
                "level {level}, {threads} threads"
            );
        }
    }
}

/// Incompressible pseudo-random bytes (the top byte of a 64-bit LCG).
pub(crate) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

#[test]
fn incompressible_blocks_are_stored() {
    assert!(looks_incompressible(&random_bytes(BLOCK_SIZE, 1)));
    assert!(!looks_incompressible(&test_bytes(BLOCK_SIZE, 1)));
    assert!(!looks_incompressible(&[7u8; BLOCK_SIZE]));
    assert!(
        !looks_incompressible(&random_bytes(1000, 1)),
        "too small to judge"
    );
    // Random bytes: stored blocks, i.e. the data plus a few bytes of framing
    // per block (level 6 would also end up emitting stored blocks, slowly).
    let data = random_bytes(10 * BLOCK_SIZE + 999, 5);
    let z = gz(&data, 2, DEFAULT_LEVEL, 1 << 16);
    assert!(
        z.len() > data.len() && z.len() < data.len() + data.len() / 1000,
        "{} bytes",
        z.len()
    );
    assert_eq!(gunzip(&z), data);
}

#[test]
fn repeats_a_histogram_cannot_see_are_still_compressed() {
    // 30 KiB of random bytes over and over (within deflate's 32 KiB reach): a
    // nearly flat histogram, yet all but the first copy is matches.
    let r = random_bytes(30 * 1024, 9);
    let data: Vec<u8> = r.iter().copied().cycle().take(4 * BLOCK_SIZE).collect();
    assert!(looks_incompressible(&data[..BLOCK_SIZE]));
    let z = gz(&data, 2, DEFAULT_LEVEL, 1 << 16);
    assert!(
        z.len() < data.len() / 8,
        "{} of {} bytes",
        z.len(),
        data.len()
    );
    assert_eq!(gunzip(&z), data);
}

#[test]
fn header_is_fixed() {
    let z = gz(b"x", 1, DEFAULT_LEVEL, 1);
    assert_eq!(&z[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    assert_eq!(gz(b"x", 1, 9, 1)[8], 2);
    assert_eq!(gz(b"x", 1, 1, 1)[8], 4);
}

#[test]
fn dictionary_helps_repetitive_input() {
    // A 20 KiB random pattern repeated: without the dictionary each block
    // would pay the pattern again (8 x 20 KiB); with it, only the first does.
    let pattern = random_bytes(20 * 1024, 7);
    let data: Vec<u8> = pattern
        .iter()
        .copied()
        .cycle()
        .take(8 * BLOCK_SIZE)
        .collect();
    let z = gz(&data, 2, DEFAULT_LEVEL, 65536);
    assert_eq!(gunzip(&z), data);
    assert!(z.len() < 3 * pattern.len(), "compressed to {}", z.len());
}

#[test]
fn every_level_round_trips() {
    let data = test_bytes(2 * BLOCK_SIZE + 5, 3);
    for level in 0..=9 {
        assert_eq!(gunzip(&gz(&data, 2, level, 50_000)), data, "level {level}");
    }
    assert!(
        ParallelGzip::with_options(
            Vec::new(),
            GzipOptions {
                level: 10,
                threads: 1
            }
        )
        .is_err()
    );
}

#[test]
fn system_gzip_agrees() {
    let data = test_bytes(3 * BLOCK_SIZE + 99, 11);
    let z = gz(&data, 2, DEFAULT_LEVEL, 8192);
    let mut child = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip (Debian package gzip) must be installed");
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || stdin.write_all(&z));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, data);
}

struct FailingWriter {
    budget: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget < buf.len() {
            return Err(io::Error::other("disk full"));
        }
        self.budget -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_error_propagates() {
    for threads in [1, 2, 4] {
        let data = test_bytes(20 * BLOCK_SIZE, 5);
        let mut w = ParallelGzip::with_options(
            FailingWriter { budget: 100_000 },
            GzipOptions { level: 1, threads },
        )
        .unwrap();
        let res = data.chunks(10_000).try_for_each(|c| w.write_all(c));
        let err = match res {
            Err(e) => e,
            Ok(()) => w.finish().err().expect("finish must fail"),
        };
        assert!(
            err.to_string().contains("disk full") || err.to_string().contains("broken"),
            "{err}"
        );
    }
}

#[test]
fn worker_panic_is_an_error_not_a_hang() {
    for threads in [1, 2, 8] {
        let data = test_bytes(12 * BLOCK_SIZE, 9);
        let mut w =
            ParallelGzip::with_options(Vec::new(), GzipOptions { level: 1, threads }).unwrap();
        w.panic_at = Some(3);
        let res = data.chunks(10_000).try_for_each(|c| w.write_all(c));
        let err = match res {
            Err(e) => e,
            Ok(()) => w.finish().expect_err("finish must fail"),
        };
        assert!(err.to_string().contains("panic"), "{err}");
    }
}

#[test]
fn a_stalled_block_does_not_let_others_pile_up() {
    let data = test_bytes(60 * BLOCK_SIZE, 4);
    let threads = 2;
    let mut w = ParallelGzip::with_options(Vec::new(), GzipOptions { level: 1, threads }).unwrap();
    w.stall_at = Some(2);
    w.write_all(&data).unwrap();
    let peak = w.peak_unwritten;
    assert!(
        peak <= (IN_FLIGHT_PER_THREAD * threads) as u64 + 1,
        "{peak} blocks held at once"
    );
    assert_eq!(gunzip(&w.finish().unwrap()), data);
}

#[test]
fn total_in_counts_everything() {
    let data = test_bytes(4 * BLOCK_SIZE + 3, 1);
    let mut w = ParallelGzip::with_options(
        Vec::new(),
        GzipOptions {
            level: 1,
            threads: 2,
        },
    )
    .unwrap();
    w.write_all(&data).unwrap();
    assert_eq!(w.total_in(), data.len() as u64);
}
