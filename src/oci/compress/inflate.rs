//! Streaming gzip decompression with ISA-L's igzip, for the diff_id pass of a pull.
//!
//! A pull must inflate every layer to check its diff_id, and on two cores that pass
//! is the whole difference between ocibench and a copier that only hashes the
//! compressed bytes. ISA-L's inflater (hand-written assembly, chosen per CPU at run
//! time) decodes about 1.5x faster than zlib-rs here, so it gets its own small safe
//! wrapper: `isal-rs`'s reader guesses corruption from "no output twice", which a
//! slow network can trigger, and keeps a raw pointer into a buffer that moves with it.
//!
//! [`GzipReader`] reads a gzip stream of one or more members (as `gzip -dc` and
//! Go's multistream reader do) from any `BufRead`, verifying each member's CRC-32
//! and length trailer. A stream that ends early is an `UnexpectedEof` error; bad
//! data is `InvalidData`.

use std::io::{self, BufRead, Read};

use isal_sys::igzip_lib as isal;

pub struct GzipReader<R: BufRead> {
    inner: R,
    // Boxed: the state is ~20 KiB (its history window) and must not move while
    // ISA-L holds pointers into it between calls.
    state: Box<isal::inflate_state>,
    /// The current member ended; the next byte (if any) starts another member.
    member_done: bool,
    /// The current member's header is still to be read.
    header_pending: bool,
}

impl<R: BufRead> GzipReader<R> {
    pub fn new(inner: R) -> Self {
        // SAFETY: inflate_state is plain data (integers, arrays, raw pointers);
        // isal_inflate_init sets every field that decoding reads first.
        let mut state: Box<isal::inflate_state> = Box::new(unsafe { std::mem::zeroed() });
        unsafe { isal::isal_inflate_init(&mut *state) };
        GzipReader {
            inner,
            state,
            member_done: false,
            header_pending: true,
        }
    }

    /// Reads one member's header (RFC 1952) and sets ISA-L up for the deflate data
    /// and trailer after it. The header is parsed here, not by ISA-L: ISA-L's own
    /// parser failed on optional fields (FEXTRA, FNAME, FCOMMENT, FHCRC) that
    /// arrived split across reads, and ignored reserved flag bits. The fields are
    /// skipped as they stream by, never collected, so a hostile name cannot grow
    /// memory.
    fn read_header(&mut self) -> io::Result<()> {
        let mut crc = crc32fast::Hasher::new();
        let mut fixed = [0u8; 10];
        read_exact(&mut self.inner, &mut fixed, &mut crc)?;
        if fixed[..2] != [0x1f, 0x8b] {
            return Err(isal_error(isal::ISAL_INVALID_WRAPPER));
        }
        if fixed[2] != 8 {
            return Err(isal_error(isal::ISAL_UNSUPPORTED_METHOD));
        }
        let flags = fixed[3];
        if flags & 0xe0 != 0 {
            return Err(invalid("reserved gzip header flags are set"));
        }
        if flags & FEXTRA != 0 {
            let mut xlen = [0u8; 2];
            read_exact(&mut self.inner, &mut xlen, &mut crc)?;
            skip(&mut self.inner, u16::from_le_bytes(xlen).into(), &mut crc)?;
        }
        for field in [FNAME, FCOMMENT] {
            if flags & field != 0 {
                skip_through_zero(&mut self.inner, &mut crc)?;
            }
        }
        if flags & FHCRC != 0 {
            let want = crc.clone().finalize() as u16;
            let mut got = [0u8; 2];
            read_exact(&mut self.inner, &mut got, &mut crc)?;
            if u16::from_le_bytes(got) != want {
                return Err(invalid("gzip header CRC does not match the header"));
            }
        }
        // SAFETY: the state is ours and holds no pointer into any buffer between calls.
        unsafe { isal::isal_inflate_reset(&mut *self.state) };
        // Raw deflate, then the CRC-32 and length trailer, verified by ISA-L.
        self.state.crc_flag = isal::ISAL_GZIP_NO_HDR_VER;
        self.header_pending = false;
        Ok(())
    }

    /// Bytes of decompressed output so far in the current member.
    #[cfg(test)]
    fn member_out(&self) -> u32 {
        self.state.total_out
    }
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn ends_early() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "gzip stream ends early")
}

/// Passes header bytes through `take` (at most `n` of what `fill_buf` offers,
/// returning how many it took), hashing what it takes.
fn consume_with(
    r: &mut impl BufRead,
    crc: &mut crc32fast::Hasher,
    mut take: impl FnMut(&[u8]) -> (usize, bool),
) -> io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(ends_early());
        }
        let (n, done) = take(buf);
        crc.update(&buf[..n]);
        r.consume(n);
        if done {
            return Ok(());
        }
    }
}

fn read_exact(r: &mut impl BufRead, out: &mut [u8], crc: &mut crc32fast::Hasher) -> io::Result<()> {
    let mut filled = 0;
    if out.is_empty() {
        return Ok(());
    }
    consume_with(r, crc, |buf| {
        let n = buf.len().min(out.len() - filled);
        out[filled..filled + n].copy_from_slice(&buf[..n]);
        filled += n;
        (n, filled == out.len())
    })
}

fn skip(r: &mut impl BufRead, n: usize, crc: &mut crc32fast::Hasher) -> io::Result<()> {
    let mut left = n;
    if left == 0 {
        return Ok(());
    }
    consume_with(r, crc, |buf| {
        let k = buf.len().min(left);
        left -= k;
        (k, left == 0)
    })
}

/// Skips a zero-terminated header field (FNAME, FCOMMENT), the zero included.
fn skip_through_zero(r: &mut impl BufRead, crc: &mut crc32fast::Hasher) -> io::Result<()> {
    consume_with(r, crc, |buf| match buf.iter().position(|&b| b == 0) {
        Some(i) => (i + 1, true),
        None => (buf.len(), false),
    })
}

fn isal_error(code: i32) -> io::Error {
    let what = match code {
        isal::ISAL_INVALID_BLOCK => "invalid deflate block",
        isal::ISAL_INVALID_SYMBOL => "invalid deflate symbol",
        isal::ISAL_INVALID_LOOKBACK => "invalid deflate distance (before the stream start)",
        isal::ISAL_INVALID_WRAPPER => "not a gzip stream (bad header)",
        isal::ISAL_UNSUPPORTED_METHOD => "unsupported gzip compression method",
        isal::ISAL_INCORRECT_CHECKSUM => "gzip CRC-32 or length trailer does not match the data",
        _ => "corrupt gzip data",
    };
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what} (ISA-L code {code})"),
    )
}

impl<R: BufRead> Read for GzipReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // ISA-L counts in u32.
        let out_len = out.len().min(u32::MAX as usize);
        loop {
            if self.member_done {
                // Another member follows only if there are more bytes.
                if self.inner.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                self.member_done = false;
                self.header_pending = true;
            }
            if self.header_pending {
                self.read_header()?;
            }
            let input = self.inner.fill_buf()?;
            let eof = input.is_empty();
            let in_len = input.len().min(u32::MAX as usize);
            let st = &mut *self.state;
            st.next_in = input.as_ptr().cast_mut();
            st.avail_in = in_len as u32;
            st.next_out = out.as_mut_ptr();
            st.avail_out = out_len as u32;
            let before = (st.block_state, st.tmp_in_size, st.wrapper_flag);
            // SAFETY: next_in/avail_in describe `input` (ISA-L only reads it, and it
            // lives until `consume` below); next_out/avail_out describe `out`. The
            // state holds no pointer into either after the call: ISA-L copies any
            // partial input and the history window into buffers of its own.
            let ret = unsafe { isal::isal_inflate(st) };
            // On corrupt data ISA-L can report more input left than it was given
            // (it hands back read-ahead bits from an earlier call): the error comes
            // first, and the counts are checked, never trusted to subtract.
            let consumed = in_len.checked_sub(st.avail_in as usize);
            let produced = out_len.checked_sub(st.avail_out as usize);
            let after = (st.block_state, st.tmp_in_size, st.wrapper_flag);
            st.next_in = std::ptr::null_mut();
            st.next_out = std::ptr::null_mut();
            st.avail_in = 0;
            st.avail_out = 0;
            if ret < 0 {
                return Err(isal_error(ret));
            }
            let (Some(consumed), Some(produced)) = (consumed, produced) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "corrupt gzip data (ISA-L's input count went backwards)",
                ));
            };
            let finished = st.block_state == isal::isal_block_state_ISAL_BLOCK_FINISH;
            self.inner.consume(consumed);
            if finished {
                self.member_done = true;
            }
            if produced > 0 {
                return Ok(produced);
            }
            if finished {
                continue;
            }
            if consumed == 0 && before == after {
                // No input taken, no output, no change of state: nothing more can come.
                return Err(if eof {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "gzip stream ends early")
                } else {
                    io::Error::new(io::ErrorKind::InvalidData, "gzip stream makes no progress")
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Pseudo-random but compressible bytes: words from a small vocabulary.
    fn sample(len: usize) -> Vec<u8> {
        let words: [&[u8]; 6] = [
            b"layer ",
            b"blob ",
            b"sha256 ",
            b"\n",
            b"ocibench ",
            b"\0\0\0",
        ];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(words[(x % 6) as usize]);
            if x % 11 == 0 {
                out.push((x >> 32) as u8);
            }
        }
        out.truncate(len);
        out
    }

    /// A BufRead that hands out at most `step` bytes per fill_buf, as a slow network does.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.fill_buf()?.len().min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.consume(n);
            Ok(n)
        }
    }
    impl BufRead for Trickle<'_> {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            Ok(&self.data[..self.data.len().min(self.step)])
        }
        fn consume(&mut self, n: usize) {
            self.data = &self.data[n..];
        }
    }

    fn inflate_all(r: impl Read, out_chunk: usize) -> io::Result<Vec<u8>> {
        let mut r = r;
        let mut out = Vec::new();
        let mut buf = vec![0u8; out_chunk];
        loop {
            match r.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn matches_the_input_for_any_input_and_output_chunking() {
        let data = sample(3 << 20);
        for level in [0, 1, 6, 9] {
            let gz = gzip(&data, level);
            for (step, out) in [(1 << 20, 256 << 10), (1, 7), (13, 4096), (4096, 1)] {
                // Byte-at-a-time output over 3 MiB is slow in debug builds: only on small steps.
                if out == 1 && level != 6 {
                    continue;
                }
                let got = inflate_all(GzipReader::new(Trickle { data: &gz, step }), out).unwrap();
                assert!(
                    got == data,
                    "level {level}, input step {step}, output {out}"
                );
            }
        }
    }

    #[test]
    fn empty_input_members_and_empty_output() {
        let gz = gzip(b"", 6);
        assert_eq!(inflate_all(GzipReader::new(&gz[..]), 64).unwrap(), b"");
        // Several members, one of them empty, read as one stream (as gzip -dc does).
        let mut multi = gzip(b"first ", 6);
        multi.extend(gzip(b"", 1));
        multi.extend(gzip(&sample(100_000), 9));
        let mut want = b"first ".to_vec();
        want.extend(sample(100_000));
        for step in [1, 5, 1 << 16] {
            let got = inflate_all(GzipReader::new(Trickle { data: &multi, step }), 1000).unwrap();
            assert!(got == want, "step {step}");
        }
        let mut r = GzipReader::new(&multi[..]);
        assert_eq!(r.read(&mut []).unwrap(), 0);
        assert_eq!(r.member_out(), 0);
    }

    #[test]
    fn truncated_stream_is_unexpected_eof_wherever_it_is_cut() {
        // Cut at 0 too: no bytes at all is not a gzip stream (gzip -dc </dev/null fails).
        let gz = gzip(&sample(200_000), 6);
        for cut in [
            0usize,
            1,
            5,
            10,
            11,
            100,
            gz.len() / 2,
            gz.len() - 8,
            gz.len() - 1,
        ] {
            for step in [3, 1 << 20] {
                let err = inflate_all(
                    GzipReader::new(Trickle {
                        data: &gz[..cut],
                        step,
                    }),
                    4096,
                )
                .unwrap_err();
                assert_eq!(
                    err.kind(),
                    io::ErrorKind::UnexpectedEof,
                    "cut at {cut}, step {step}: {err}"
                );
            }
        }
    }

    #[test]
    fn corrupt_data_and_trailers_are_invalid_data() {
        let data = sample(200_000);
        let gz = gzip(&data, 6);
        // A flipped CRC byte, a wrong length, a bad magic, garbage after a member.
        let mut crc = gz.clone();
        let n = crc.len();
        crc[n - 6] ^= 0x40;
        let mut len = gz.clone();
        len[n - 2] ^= 0x01;
        let mut magic = gz.clone();
        magic[0] = b'x';
        let mut trailing = gz.clone();
        trailing.extend_from_slice(b"not gzip at all");
        let mut body = gz.clone();
        for b in &mut body[40..60] {
            *b ^= 0xa5;
        }
        for (name, bad) in [
            ("crc", crc),
            ("len", len),
            ("magic", magic),
            ("trailing", trailing),
            ("body", body),
        ] {
            let err = inflate_all(GzipReader::new(&bad[..]), 65536).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{name}: {err}");
        }
    }

    #[test]
    fn agrees_with_flate2_on_a_large_incompressible_stream() {
        let data = crate::oci::compress::pgzip::tests::random_bytes(5_000_000, 1);
        let gz = gzip(&data, 6);
        let mut via_flate2 = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut via_flate2)
            .unwrap();
        let ours = inflate_all(
            GzipReader::new(io::BufReader::with_capacity(8192, &gz[..])),
            1 << 18,
        )
        .unwrap();
        assert!(ours == via_flate2 && ours == data);
    }

    /// Found by the `inflate` fuzz target (tests/fuzz): on this corrupt stream,
    /// read through a 63-byte buffer, ISA-L reports more input left than it
    /// was given; the wrapper subtracted and overflowed (a panic, or a wrapped
    /// count in release builds) before it looked at the error.
    #[test]
    fn corrupt_stream_is_an_error_not_an_overflow() {
        let stream: &[u8] = &[
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x03, 0x03, 0x03, 0x03, 0x03,
            0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        let r = GzipReader::new(io::BufReader::with_capacity(63, stream));
        let err = inflate_all(r, 68).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }
    /// A member with every optional header field (FEXTRA, FNAME, FCOMMENT, FHCRC),
    /// as `gzip file` writes FNAME. Found by the `inflate` fuzz target: when the
    /// header reached ISA-L in pieces it failed with "invalid deflate block".
    fn gzip_with_all_header_fields(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::GzBuilder::new()
            .filename("layer.tar")
            .comment("a comment")
            .extra(vec![b'O', b'B', 3, 0, 1, 2, 3])
            .write(Vec::new(), Compression::new(6));
        e.write_all(data).unwrap();
        let gz = e.finish().unwrap();
        // Header: 10 fixed bytes, XLEN + extra, name\0, comment\0; then FHCRC.
        let header_len = 10 + 2 + 7 + "layer.tar".len() + 1 + "a comment".len() + 1;
        let mut header = gz[..header_len].to_vec();
        header[3] |= 0x02;
        let crc = crc32fast::hash(&header);
        let mut out = header;
        out.extend_from_slice(&(crc as u16).to_le_bytes());
        out.extend_from_slice(&gz[header_len..]);
        out
    }

    #[test]
    fn optional_header_fields_read_however_the_bytes_arrive() {
        let data = sample(50_000);
        let mut multi = gzip_with_all_header_fields(&data);
        multi.extend(gzip_with_all_header_fields(b"second"));
        let mut want = data.clone();
        want.extend_from_slice(b"second");
        // flate2 agrees the stream is valid (header CRC included).
        let mut theirs = Vec::new();
        flate2::read::MultiGzDecoder::new(&multi[..])
            .read_to_end(&mut theirs)
            .unwrap();
        assert!(theirs == want);
        for step in [1, 2, 7, 32, 1 << 16] {
            let got = inflate_all(GzipReader::new(Trickle { data: &multi, step }), 4096)
                .unwrap_or_else(|e| panic!("step {step}: {e}"));
            assert!(got == want, "step {step}");
        }
        // A wrong header CRC, and reserved flag bits (RFC 1952: must refuse), are errors.
        let mut bad_crc = gzip_with_all_header_fields(b"x");
        let at = 10 + 2 + 7 + 10 + 10;
        bad_crc[at] ^= 0xff;
        let mut reserved = gzip(b"x", 6);
        reserved[3] |= 0x20;
        for (name, stream) in [("header crc", bad_crc), ("reserved flags", reserved)] {
            let err = inflate_all(GzipReader::new(&stream[..]), 64).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{name}: {err}");
        }
    }
}
