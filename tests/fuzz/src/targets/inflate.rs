//! The ISA-L gzip reader that inflates every pulled layer, against zlib-rs
//! (flate2's `MultiGzDecoder`) on the same bytes: both must give the same output,
//! or both fail. The first input byte picks the size of the reads and the second
//! the input buffer's capacity, so that members, headers and trailers are cut at
//! every place a slow network could cut them.

use std::io::{BufReader, Read};

use ocibench::oci::compress::inflate::GzipReader;

/// Output past this is not compared (a few KiB of input can inflate to GiBs).
const OUT_LIMIT: usize = 8 << 20;

pub fn run(data: &[u8]) {
    let [read_pick, cap_pick, stream @ ..] = data else {
        return;
    };
    let read_size = 1 + usize::from(*read_pick) * 67;
    let capacity = 1 + usize::from(*cap_pick) * 31;

    let mut ours = Vec::new();
    let mut reader = GzipReader::new(BufReader::with_capacity(capacity, stream));
    let mut buf = vec![0u8; read_size];
    let ours_ok = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                assert!(n <= buf.len());
                ours.extend_from_slice(&buf[..n]);
                if ours.len() >= OUT_LIMIT {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    let mut theirs = Vec::new();
    let theirs_ok = flate2::bufread::MultiGzDecoder::new(stream)
        .take(ours.len().max(OUT_LIMIT) as u64)
        .read_to_end(&mut theirs);
    match (&ours_ok, &theirs_ok) {
        (Ok(()), Ok(_)) => {
            if ours.len() >= OUT_LIMIT {
                let n = ours.len().min(theirs.len());
                assert_eq!(ours[..n], theirs[..n], "outputs differ before the limit");
            } else {
                assert!(
                    ours == theirs,
                    "outputs differ ({} vs {} bytes)",
                    ours.len(),
                    theirs.len()
                );
            }
        }
        (Err(_), Err(_)) => {}
        (Err(e), Ok(_)) => {
            if ours.len() < OUT_LIMIT && theirs.len() < OUT_LIMIT {
                panic!(
                    "ISA-L fails ({e}) where zlib-rs inflates {} bytes",
                    theirs.len()
                )
            }
        }
        (Ok(()), Err(e)) => {
            if ours.len() < OUT_LIMIT {
                panic!(
                    "ISA-L inflates {} bytes where zlib-rs fails ({e})",
                    ours.len()
                )
            }
        }
    }
}
