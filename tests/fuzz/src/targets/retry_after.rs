//! `Retry-After` values as a registry under load sends them: delay seconds or an
//! HTTP date. Any text gives a delay or none without panicking; seconds come back
//! exact; a date written by `httpdate` comes back as its distance from now (zero
//! when past).

use std::time::{Duration, UNIX_EPOCH};

use ocibench::oci::registry::parse_retry_after;

/// A fixed "now" (2023-11-14), so that runs are reproducible.
const NOW_SECS: u64 = 1_700_000_000;
/// 9999-12-31T23:59:59Z, the last date HTTP dates can write.
const MAX_DATE_SECS: u64 = 253_402_300_799;

pub fn run(data: &[u8]) {
    let now = UNIX_EPOCH + Duration::from_secs(NOW_SECS);
    if let Ok(text) = std::str::from_utf8(data) {
        let got = parse_retry_after(text, now);
        if let Ok(secs) = text.trim().parse::<u64>() {
            assert_eq!(got, Some(Duration::from_secs(secs)), "{text:?}");
        }
    }
    // The first eight bytes as a date: written as an HTTP date and read back.
    if data.len() >= 8 {
        let secs = u64::from_le_bytes(data[..8].try_into().expect("8 bytes")) % (MAX_DATE_SECS + 1);
        let when = UNIX_EPOCH + Duration::from_secs(secs);
        let written = httpdate::fmt_http_date(when);
        let want = when.duration_since(now).unwrap_or(Duration::ZERO);
        assert_eq!(parse_retry_after(&written, now), Some(want), "{written:?}");
        assert_eq!(
            parse_retry_after(&format!("  {secs}\t"), now),
            Some(Duration::from_secs(secs))
        );
    }
}
