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
}

impl<R: BufRead> GzipReader<R> {
    pub fn new(inner: R) -> Self {
        // SAFETY: inflate_state is plain data (integers, arrays, raw pointers);
        // isal_inflate_init sets every field that decoding reads first.
        let mut state: Box<isal::inflate_state> = Box::new(unsafe { std::mem::zeroed() });
        unsafe { isal::isal_inflate_init(&mut *state) };
        state.crc_flag = isal::ISAL_GZIP;
        GzipReader {
            inner,
            state,
            member_done: false,
        }
    }

    /// Bytes of decompressed output so far in the current member.
    #[cfg(test)]
    fn member_out(&self) -> u32 {
        self.state.total_out
    }
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
                unsafe { isal::isal_inflate_reset(&mut *self.state) };
                self.member_done = false;
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
}
