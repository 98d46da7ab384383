//! Compression: inflating layers (ISA-L for gzip, libzstd for zstd), measuring
//! them (diff_id and length in one pass) and compressing them in parallel (pgzip,
//! multi-threaded zstd).
//!
//! Callers name a layer's compression once (`manifest::Compression` for what a
//! media type says, [`LayerCompression`] for what a build writes) and get a reader
//! or writer for it here, so pull, size, export and build treat both formats alike.

pub mod inflate;
pub mod measure;
pub mod pgzip;
pub mod zstd_stream;

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use crate::oci::manifest::Compression;
use inflate::GzipReader;
use pgzip::{GzipOptions, ParallelGzip};
use zstd_stream::{ZstdOptions, ZstdReader, ZstdWriter};

/// The uncompressed tar stream of a layer blob read through `input`.
pub fn decompressed<'a>(
    input: impl BufRead + 'a,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(GzipReader::new(input)),
        Compression::Zstd => Box::new(ZstdReader::new(input)?),
    })
}

/// How a build compresses the layers it writes (`build --compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// Deflate level 0..=9.
    Gzip { level: u32 },
    /// zstd level 1..=22.
    Zstd { level: i32 },
}

impl Default for LayerCompression {
    /// gzip at level 6, what Docker and buildkit write.
    fn default() -> Self {
        LayerCompression::Gzip {
            level: pgzip::DEFAULT_LEVEL,
        }
    }
}

impl LayerCompression {
    /// zstd at its default level (3).
    pub fn zstd() -> Self {
        LayerCompression::Zstd {
            level: zstd_stream::DEFAULT_LEVEL,
        }
    }

    /// The media-type family's name for it.
    pub fn compression(self) -> Compression {
        match self {
            LayerCompression::Gzip { .. } => Compression::Gzip,
            LayerCompression::Zstd { .. } => Compression::Zstd,
        }
    }

    /// Whether the level is one the format has.
    pub fn level_in_range(self) -> bool {
        match self {
            LayerCompression::Gzip { level } => level <= 9,
            LayerCompression::Zstd { level } => (1..=zstd_stream::MAX_LEVEL).contains(&level),
        }
    }
}

/// `gzip:6`, `zstd:3`: the spelling `--compression` takes.
impl fmt::Display for LayerCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerCompression::Gzip { level } => write!(f, "gzip:{level}"),
            LayerCompression::Zstd { level } => write!(f, "zstd:{level}"),
        }
    }
}

/// A layer's compressing writer, of either format; the bytes depend only on the
/// input and the [`LayerCompression`], never on `threads`.
pub enum LayerWriter<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(ZstdWriter<W>),
}

impl<W: Write> LayerWriter<W> {
    /// `threads` 0 is one per core.
    pub fn new(out: W, compression: LayerCompression, threads: usize) -> io::Result<Self> {
        let threads = if threads == 0 {
            pgzip::default_threads()
        } else {
            threads
        };
        Ok(match compression {
            LayerCompression::Gzip { level } => LayerWriter::Gzip(ParallelGzip::with_options(
                out,
                GzipOptions { level, threads },
            )?),
            LayerCompression::Zstd { level } => {
                LayerWriter::Zstd(ZstdWriter::new(out, ZstdOptions { level, threads })?)
            }
        })
    }

    /// Ends the stream; returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            LayerWriter::Gzip(w) => w.finish(),
            LayerWriter::Zstd(w) => w.finish(),
        }
    }
}

impl<W: Write> Write for LayerWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LayerWriter::Gzip(w) => w.write(buf),
            LayerWriter::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            LayerWriter::Gzip(w) => w.flush(),
            LayerWriter::Zstd(w) => w.flush(),
        }
    }
}

/// `gzip`, `zstd`, `tar` (uncompressed): for messages.
pub fn compression_name(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "tar",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    }
}
