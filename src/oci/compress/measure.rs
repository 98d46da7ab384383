//! Measuring a layer: its diff_id (sha256 of the uncompressed tar) and length, in
//! one pass over the blob. Decompressing (ISA-L's inflate for gzip, libzstd for
//! zstd) is the only work on the reading thread; a second thread hashes the chunks it fills, and buffers
//! circulate between them, so a layer of any size costs a few hundred KiB.
//! The pull runs this beside the download (`ChannelReader` lends it the
//! downloaded chunks); the store runs it over a stored blob.

use std::io::{self, Read, Write};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use crate::oci::compress::decompressed;
use crate::oci::digest::{Algorithm, Digest, HashingSink};
use crate::oci::manifest::Compression;

/// What the store remembers about a layer blob (its compressed digest is the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    pub diff_id: Digest,
    pub uncompressed_bytes: u64,
}

/// Decompresses (if needed) and hashes a layer: its diff_id (in `algorithm`, the
/// one the image config names it by) and uncompressed length.
/// Inflating is the only work on this thread: it fills 256 KiB chunks in place and
/// hands each to a thread that hashes it, which hands the buffer back for reuse.
pub fn measure_layer(
    input: impl io::BufRead,
    compression: Compression,
    algorithm: Algorithm,
) -> io::Result<LayerMeta> {
    let (diff_id, uncompressed_bytes) = hash_stream(decompressed(input, compression)?, algorithm)?;
    Ok(LayerMeta {
        diff_id,
        uncompressed_bytes,
    })
}

/// The size of the chunks read, inflated and hashed (256 KiB: `io::copy`'s 8 KiB
/// cost ~25% of a cold pull).
pub(crate) const CHUNK: usize = 256 * 1024;

/// sha256 and length of everything `r` yields, hashed on a second thread while this
/// one reads (inflates) the next chunk. Buffers circulate between the two threads, so
/// a layer of any size costs a few hundred KiB and no allocation per chunk.
fn hash_stream(mut r: impl Read, algorithm: Algorithm) -> io::Result<(Digest, u64)> {
    const IN_FLIGHT: usize = 4;
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(IN_FLIGHT);
    let (free_tx, free_rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
    for _ in 0..IN_FLIGHT {
        free_tx
            .send(vec![0u8; CHUNK])
            .expect("room for every buffer");
    }
    std::thread::scope(|s| {
        let hasher = s.spawn(move || {
            let mut sink = HashingSink::with_algorithm(algorithm);
            for (buf, n) in full_rx {
                let _ = sink.write_all(&buf[..n]);
                // The reader may have stopped (an error): then nobody wants the buffer.
                let _ = free_tx.send(buf);
            }
            sink.finish()
        });
        let read = (|| -> io::Result<()> {
            loop {
                let mut buf = free_rx.recv().expect("hash thread returns buffers");
                let n = fill(&mut r, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                full_tx.send((buf, n)).expect("hash thread alive");
                if n < CHUNK {
                    return Ok(());
                }
            }
        })();
        drop(full_tx);
        let hashed = hasher.join().expect("hash thread panicked");
        read.map(|()| hashed)
    })
}

/// Reads into `buf` until it is full or the stream ends; returns how much it holds.
pub(crate) fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads the chunks a channel carries (a buffer and how much of it is filled), as one
/// buffered stream: `fill_buf` lends the chunk itself, so the inflater reads the
/// downloaded bytes without another copy. Finished buffers can be sent back for reuse.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<(Vec<u8>, usize)>,
    recycle: Option<mpsc::SyncSender<Vec<u8>>>,
    cur: Vec<u8>,
    end: usize,
    pos: usize,
}

impl ChannelReader {
    pub(crate) fn new(rx: mpsc::Receiver<(Vec<u8>, usize)>) -> Self {
        ChannelReader {
            rx,
            recycle: None,
            cur: Vec::new(),
            end: 0,
            pos: 0,
        }
    }

    pub(crate) fn recycling(mut self, to: mpsc::SyncSender<Vec<u8>>) -> Self {
        self.recycle = Some(to);
        self
    }
}

impl io::BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.end {
            match self.rx.recv() {
                Ok((buf, end)) => {
                    let done = std::mem::replace(&mut self.cur, buf);
                    if let Some(to) = &self.recycle {
                        // Full (or the sender gone): the buffer is simply freed. The
                        // receiver takes only full-size buffers back.
                        let _ = to.try_send(done);
                    }
                    self.end = end.min(self.cur.len());
                    self.pos = 0;
                }
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.cur[self.pos..self.end])
    }
    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = io::BufRead::fill_buf(self)?;
        let n = out.len().min(avail.len());
        out[..n].copy_from_slice(&avail[..n]);
        io::BufRead::consume(self, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_stream_matches_one_shot() {
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 % 251) as u8).collect();
        // Exactly a chunk, a chunk and a byte, several chunks, nothing.
        for len in [CHUNK, CHUNK + 1, data.len(), 0] {
            let got = hash_stream(&data[..len], Algorithm::Sha256).unwrap();
            assert_eq!(got, (Digest::of(&data[..len]), len as u64), "{len} bytes");
        }
    }

    #[test]
    fn hash_stream_passes_read_errors_on() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("connection reset"));
                }
                let n = out.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
        }
        let err = hash_stream(Broken(3 * CHUNK + 5), Algorithm::Sha256).unwrap_err();
        assert_eq!(err.to_string(), "connection reset");
    }

    #[test]
    fn channel_reader_joins_chunks() {
        let (tx, rx) = mpsc::sync_channel(4);
        tx.send((b"abXX".to_vec(), 2)).unwrap();
        tx.send((Vec::new(), 0)).unwrap();
        tx.send((b"cde".to_vec(), 3)).unwrap();
        drop(tx);
        let mut s = String::new();
        ChannelReader::new(rx).read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcde");
    }
}
