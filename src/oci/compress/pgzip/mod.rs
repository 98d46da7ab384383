//! Parallel, deterministic gzip compression.
//!
//! Layers are the bulk of a build, and single-threaded deflate is its slowest
//! step. `ParallelGzip` compresses on several threads the way pigz does, while
//! keeping the output a pure function of (input, level):
//!
//! - the input is cut into fixed `BLOCK_SIZE` blocks (never dependent on the
//!   thread count); each block is compressed as raw deflate with the previous
//!   block's last 32 KiB as preset dictionary, so matches still reach back
//!   across block boundaries;
//! - every block but the last ends with a sync flush (an empty stored block), so
//!   the blocks concatenate into one valid deflate stream; the last ends with a
//!   final block;
//! - a block whose bytes look incompressible (an almost flat byte histogram, as
//!   in already-compressed files) and that level 1 cannot shrink by 1/64 is
//!   stored rather than searched at full level, which would take ~10x as long
//!   to emit about the same stored bytes (klauspost/compress, whose pgzip
//!   containerd uses, skips incompressible input the same way);
//! - each block's CRC-32 is computed by its worker and combined in order;
//! - one gzip member with a fixed header: no name, mtime 0, XFL as zlib sets it
//!   for the level, and OS byte 255 ("unknown"), which is what Go's
//!   `compress/gzip` (hence Docker and buildkit) writes.
//!
//! The backend is pinned (flate2 with zlib-rs at the `Cargo.lock` version). Each
//! block gets a fresh compressor and an output space that depends only on the
//! block, so the bytes do not depend on thread count or scheduling (tested).
//! zlib-rs's hash is CPU-independent and its SIMD match-length code computes
//! the same lengths as the scalar code, so other CPUs should give the same
//! bytes too; that has only been checked on x86-64 with AVX2.
//!
//! Memory stays small whatever the input size: at most `IN_FLIGHT_PER_THREAD *
//! threads` blocks are in flight, and buffers are recycled.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Uncompressed bytes per independently compressed block. Part of the output
/// format: changing it changes every layer digest.
pub const BLOCK_SIZE: usize = 128 * 1024;
/// Deflate's window: how much of the previous block primes the next.
const DICT_SIZE: usize = 32 * 1024;
/// Blocks dispatched but not yet written (queued, compressing, or done and
/// waiting for an earlier one), per thread. Deep enough that workers never
/// starve while the writing thread is briefly descheduled (on a busy machine),
/// small enough for memory: about 300 KiB per block.
const IN_FLIGHT_PER_THREAD: usize = 8;
/// The default compression level (gzip's and Docker's).
pub const DEFAULT_LEVEL: u32 = 6;
/// The gzip header's OS byte: 255, "unknown", as Go's `compress/gzip` writes.
pub const GZIP_OS: u8 = 255;

/// Number of compression threads used when none is configured.
pub fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Options of a [`ParallelGzip`]: level and thread count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GzipOptions {
    /// Deflate level, 0 (store) to 9.
    pub level: u32,
    /// Compression threads; 1 compresses on the caller's thread.
    pub threads: usize,
}

impl Default for GzipOptions {
    fn default() -> Self {
        GzipOptions {
            level: DEFAULT_LEVEL,
            threads: default_threads(),
        }
    }
}

/// The gzip header: magic, deflate, no flags, mtime 0, XFL, OS.
fn gzip_header(level: u32) -> [u8; 10] {
    // zlib's rule: 2 = slowest/best, 4 = fastest.
    let xfl = match level {
        9 => 2,
        0 | 1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, GZIP_OS]
}

/// One block to compress: `input[..dict_len]` is the dictionary, the rest the data.
struct Job {
    seq: u64,
    input: Vec<u8>,
    dict_len: usize,
    last: bool,
    out: Vec<u8>,
    #[cfg(test)]
    panic: bool,
    #[cfg(test)]
    stall: bool,
}

/// A compressed block, with its buffers handed back for reuse.
struct Done {
    seq: u64,
    input: Vec<u8>,
    out: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// Raw deflate of one block; output is a function of (level, dictionary, data, last).
///
/// Each block gets a fresh compressor (zlib-rs zeroes its window and hash
/// tables on creation): after `reset`, zlib-rs 0.6 lets stale window bytes steer
/// match choices (zlib-rs issue #459, zlib-ng #2100), so a reused compressor
/// would make the bytes depend on which blocks a thread happened to compress
/// before (see `compressor_history_does_not_leak`). Creation and the dictionary
/// cost ~2% of the CPU time (0.09 s of ~5.1 s for the build benchmark's tar).
fn compress_block(level: u32, mut job: Job) -> io::Result<Done> {
    #[cfg(test)]
    if job.panic {
        panic!("injected worker panic");
    }
    #[cfg(test)]
    if job.stall {
        thread::sleep(std::time::Duration::from_millis(300));
    }
    let dict = &job.input[..job.dict_len];
    let data = &job.input[job.dict_len..];
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    let out = &mut job.out;
    if level >= 2 && looks_incompressible(data) {
        // Confirm with a fast pass (it would find repeats a byte histogram cannot
        // see); if even that saves almost nothing, store the block: level `level`
        // would spend ~10x the time to emit stored blocks of its own.
        deflate_block(1, dict, data, job.last, out)?;
        let level = if out.len() * 64 >= data.len() * 63 {
            0
        } else {
            level
        };
        deflate_block(level, dict, data, job.last, out)?;
    } else {
        deflate_block(level, dict, data, job.last, out)?;
    }
    Ok(Done {
        seq: job.seq,
        input: job.input,
        out: job.out,
        crc,
    })
}

/// Whether a block's bytes are spread almost evenly over all 256 values, as
/// compressed, encrypted or random data are (and text, code and binaries are not).
/// Integer arithmetic only: the answer, hence the output, is the same on every CPU.
fn looks_incompressible(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    // For uniform bytes the sum of squared counts is n^2/256 + n(1 - 1/256), give
    // or take a few thousandths; 1% above that is far beyond chance for 128 KiB.
    let n = data.len() as u64;
    let sum_sq: u64 = counts.iter().map(|&c| u64::from(c) * u64::from(c)).sum();
    sum_sq * 256 <= (n * n + 256 * n) * 101 / 100
}

/// Raw deflate of `data` at `level`, primed with `dict`, into `out` (cleared first),
/// ending with a sync flush, or with the final block if `last`.
fn deflate_block(
    level: u32,
    dict: &[u8],
    data: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() && level > 0 {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    out.clear();
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // The output space offered is a function of the block alone, never of a
    // recycled buffer's capacity: zlib sizes stored blocks (level 0, and
    // incompressible data) to the space available. One call suffices in
    // practice (deflate's worst case is +5 bytes per 16 KiB stored block).
    let mut space = data.len() + data.len() / 8 + 64;
    #[cfg(test)]
    if tests::TINY_SPACE.get() {
        space = 100;
    }
    loop {
        let consumed = c.total_in() as usize;
        let start = out.len();
        out.resize(start + space, 0);
        let before = c.total_out();
        let status = c
            .compress(&data[consumed..], &mut out[start..], flush)
            .map_err(io::Error::other)?;
        let written = (c.total_out() - before) as usize;
        out.truncate(start + written);
        let all_in = c.total_in() as usize == data.len();
        // zlib's contract: a flush is complete once it returns with output space left.
        let complete = if last {
            status == Status::StreamEnd
        } else {
            all_in && written < space
        };
        if complete {
            break;
        }
        space = 64 * 1024;
    }
    Ok(())
}

type WorkerResult = Result<Done, String>;

/// Compression threads fed through a shared job queue.
struct Pool {
    jobs: Option<Sender<Job>>,
    results: Receiver<WorkerResult>,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    fn spawn(threads: usize, level: u32) -> io::Result<Pool> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (res_tx, res_rx) = mpsc::channel::<WorkerResult>();
        let mut pool = Pool {
            jobs: Some(job_tx),
            results: res_rx,
            handles: Vec::with_capacity(threads),
        };
        for i in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let res_tx = res_tx.clone();
            let handle = thread::Builder::new()
                .name(format!("pgzip-{i}"))
                .spawn(move || worker(&job_rx, &res_tx, level))?;
            pool.handles.push(handle);
        }
        Ok(pool)
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, results: &Sender<WorkerResult>, level: u32) {
    loop {
        // The lock is held only while waiting for a job, never while compressing.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let res = panic::catch_unwind(AssertUnwindSafe(|| compress_block(level, job)));
        let res = match res {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(format!("deflate failed: {e}")),
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                Err(format!("compression thread panicked: {msg}"))
            }
        };
        if results.send(res).is_err() {
            return;
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends the workers after their current block.
        drop(self.jobs.take());
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// A `Write` adapter producing one deterministic gzip member, compressed in parallel.
///
/// `flush` only passes already compressed blocks on; it never cuts a block
/// (that would make the output depend on when callers flush). Call `finish`
/// to end the stream; dropping without it abandons the output.
pub struct ParallelGzip<W: Write> {
    inner: W,
    level: u32,
    /// Current block: dictionary (`..dict_len`) then up to `BLOCK_SIZE` of data.
    buf: Vec<u8>,
    dict_len: usize,
    next_seq: u64,
    next_write: u64,
    in_flight: usize,
    max_in_flight: usize,
    ready: BTreeMap<u64, Done>,
    total_in: u64,
    crc: crc32fast::Hasher,
    header_written: bool,
    /// Set after an error: the stream is broken and further writes fail.
    broken: bool,
    pool: Option<Pool>,
    /// One thread: compress on the caller's thread, no pool.
    inline: bool,
    spare_inputs: Vec<Vec<u8>>,
    spare_outputs: Vec<Vec<u8>>,
    #[cfg(test)]
    panic_at: Option<u64>,
    #[cfg(test)]
    stall_at: Option<u64>,
    /// Most blocks ever dispatched but not yet written.
    #[cfg(test)]
    peak_unwritten: u64,
}

impl<W: Write> ParallelGzip<W> {
    /// A compressor with the default level and one thread per core.
    pub fn new(inner: W) -> io::Result<Self> {
        Self::with_options(inner, GzipOptions::default())
    }

    /// A compressor with the given level (0..=9) and thread count (0 means one per core).
    pub fn with_options(inner: W, opts: GzipOptions) -> io::Result<Self> {
        if opts.level > 9 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gzip level {} is out of range 0..=9", opts.level),
            ));
        }
        let threads = if opts.threads == 0 {
            default_threads()
        } else {
            opts.threads
        };
        let pool = if threads == 1 {
            None
        } else {
            Some(Pool::spawn(threads, opts.level)?)
        };
        Ok(ParallelGzip {
            inner,
            level: opts.level,
            buf: Vec::with_capacity(DICT_SIZE + BLOCK_SIZE),
            dict_len: 0,
            next_seq: 0,
            next_write: 0,
            in_flight: 0,
            max_in_flight: IN_FLIGHT_PER_THREAD * threads,
            ready: BTreeMap::new(),
            total_in: 0,
            crc: crc32fast::Hasher::new(),
            header_written: false,
            broken: false,
            pool,
            inline: threads == 1,
            spare_inputs: Vec::new(),
            spare_outputs: Vec::new(),
            #[cfg(test)]
            panic_at: None,
            #[cfg(test)]
            stall_at: None,
            #[cfg(test)]
            peak_unwritten: 0,
        })
    }

    /// The inner writer (compressed output so far is only what finished blocks produced).
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Total uncompressed bytes accepted so far.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.check()?;
        let res = self.finish_inner();
        if res.is_err() {
            self.broken = true;
        }
        res?;
        // Join the workers before handing the writer back.
        drop(self.pool.take());
        let ParallelGzip { inner, .. } = self;
        Ok(inner)
    }

    fn finish_inner(&mut self) -> io::Result<()> {
        self.dispatch(true)?;
        while self.in_flight > 0 {
            self.wait_one()?;
        }
        debug_assert!(self.ready.is_empty());
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.clone().finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32, as RFC 1952 says.
        trailer[4..].copy_from_slice(&(self.total_in as u32).to_le_bytes());
        self.inner.write_all(&trailer)?;
        self.inner.flush()
    }

    fn check(&self) -> io::Result<()> {
        if self.broken {
            Err(io::Error::other(
                "gzip stream is broken by an earlier error",
            ))
        } else {
            Ok(())
        }
    }

    /// Hands the current block to a worker (or compresses it here) and starts the next.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let mut next = self
            .spare_inputs
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(DICT_SIZE + BLOCK_SIZE));
        next.clear();
        if !last {
            let data = &self.buf[self.dict_len..];
            next.extend_from_slice(&data[data.len().saturating_sub(DICT_SIZE)..]);
        }
        let next_dict = next.len();
        let input = mem::replace(&mut self.buf, next);
        let dict_len = mem::replace(&mut self.dict_len, next_dict);
        let seq = self.next_seq;
        self.next_seq += 1;
        let job = Job {
            seq,
            input,
            dict_len,
            last,
            out: self.spare_outputs.pop().unwrap_or_default(),
            #[cfg(test)]
            panic: self.panic_at == Some(seq),
            #[cfg(test)]
            stall: self.stall_at == Some(seq),
        };
        if self.inline {
            let level = self.level;
            let done = match panic::catch_unwind(AssertUnwindSafe(|| compress_block(level, job))) {
                Ok(r) => r?,
                Err(_) => return Err(io::Error::other("compression panicked")),
            };
            self.ready.insert(done.seq, done);
            return self.write_ready();
        }
        // Bound every block not yet written, not just those at the workers:
        // when one worker stalls (descheduled on a busy machine), the others'
        // finished blocks wait in `ready`, and must not pile up there.
        // (The oldest unwritten block is then always at a worker: `in_flight > 0`.)
        while self.next_seq - self.next_write > self.max_in_flight as u64 && self.in_flight > 0 {
            self.wait_one()?;
        }
        let pool = self
            .pool
            .as_ref()
            .expect("a pool when not compressing locally");
        pool.jobs
            .as_ref()
            .expect("queue open until drop")
            .send(job)
            .map_err(|_| io::Error::other("compression threads exited"))?;
        self.in_flight += 1;
        #[cfg(test)]
        {
            self.peak_unwritten = self.peak_unwritten.max(self.next_seq - self.next_write);
        }
        // Pass on whatever is already done, without waiting.
        while let Some(res) = self.pool.as_ref().and_then(|p| p.results.try_recv().ok()) {
            self.accept(res)?;
        }
        self.write_ready()
    }

    /// Waits for one block to come back, then writes what is in order.
    fn wait_one(&mut self) -> io::Result<()> {
        let pool = self.pool.as_ref().expect("in-flight blocks imply a pool");
        let res = pool
            .results
            .recv()
            .map_err(|_| io::Error::other("compression threads exited"))?;
        self.accept(res)?;
        self.write_ready()
    }

    fn accept(&mut self, res: WorkerResult) -> io::Result<()> {
        self.in_flight -= 1;
        let done = res.map_err(io::Error::other)?;
        self.ready.insert(done.seq, done);
        Ok(())
    }

    /// Writes the blocks that are next in sequence.
    fn write_ready(&mut self) -> io::Result<()> {
        while let Some(done) = self.ready.remove(&self.next_write) {
            if !self.header_written {
                self.inner.write_all(&gzip_header(self.level))?;
                self.header_written = true;
            }
            self.inner.write_all(&done.out)?;
            self.crc.combine(&done.crc);
            self.next_write += 1;
            self.spare_inputs.push(done.input);
            self.spare_outputs.push(done.out);
        }
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        let mut rest = buf;
        while !rest.is_empty() {
            let filled = self.buf.len() - self.dict_len;
            if filled == BLOCK_SIZE {
                // A full block is sent only once more data shows it is not the last.
                if let Err(e) = self.dispatch(false) {
                    self.broken = true;
                    return Err(e);
                }
                continue;
            }
            let n = rest.len().min(BLOCK_SIZE - filled);
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        self.total_in += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

#[cfg(test)]
pub(crate) mod tests;
