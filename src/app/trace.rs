//! `-v/--verbose`: the registry client's exchanges as one stderr line each, for a
//! user asking "which endpoint answered, what did it say, and how long did it take":
//!
//! ```text
//! GET http://127.0.0.1:5000/v2/app/manifests/1 401 - 0 ms (authenticating)
//! GET http://127.0.0.1:5001/token?service=reg&scope=repository%3Aapp%3Apull 200 1021 B 2 ms (token)
//! GET http://127.0.0.1:5000/v2/app/blobs/sha256:4c2f… 200 2104832 B 31 ms (retry 1)
//! ```
//!
//! Bytes are exact (body bytes received; `sent` for uploads), `-` when the body was not
//! read (the client consumed the answer itself), `N of M B` when it ended early. The
//! library hands over an [`Exchange`] whose URL is already redacted and which holds
//! no header; this file only decides how it reads.

use std::sync::Arc;

use ocibench::oci::registry::{BodyEnd, Exchange, ExchangeHook, Outcome, Then};

use crate::app::terminal::status;

/// The hook `-v` gives the registry client: one line per exchange on stderr.
pub fn stderr_hook() -> ExchangeHook {
    Arc::new(|e: &Exchange| status(format_args!("{}", line(e))))
}

/// `METHOD URL STATUS BYTES MS (notes)`; a failure reads `METHOD URL failed MS (why)`.
pub fn line(e: &Exchange) -> String {
    let mut notes = Vec::new();
    let answer = match &e.outcome {
        Outcome::Status(code) => format!("{code} {}", bytes(e, &mut notes)),
        Outcome::Failed(why) => {
            notes.push(why.clone());
            "failed".to_string()
        }
    };
    if e.token_request {
        notes.insert(0, "token".into());
    }
    if e.sent > 0 {
        notes.push(format!("sent {} B", e.sent));
    }
    if let Some(n) = e.retry {
        notes.push(format!("retry {n}"));
    }
    match &e.then {
        Some(Then::Authenticate) => notes.push("authenticating".into()),
        Some(Then::Redirected) => notes.push("redirect followed".into()),
        Some(Then::RetryIn(wait)) => notes.push(format!("retrying in {} ms", wait.as_millis())),
        None => {}
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    };
    format!(
        "{} {} {answer} {} ms{notes}",
        e.method,
        e.url,
        e.elapsed.as_millis()
    )
}

/// The received-bytes column, adding a note when the body ended early.
fn bytes(e: &Exchange, notes: &mut Vec<String>) -> String {
    match &e.body {
        BodyEnd::Complete => format!("{} B", e.received),
        BodyEnd::Unread => "-".to_string(),
        BodyEnd::Cut { expected, error } => {
            notes.push(match error {
                Some(why) => format!("body cut: {why}"),
                None => "body not read to its end".to_string(),
            });
            match expected {
                Some(total) => format!("{} of {total} B", e.received),
                None => format!("{} B", e.received),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ocibench::oci::registry::ShownUrl;

    use super::*;

    fn exchange(method: &str, url: &str, outcome: Outcome) -> Exchange {
        Exchange {
            method: method.into(),
            url: ShownUrl::new(url),
            outcome,
            received: 0,
            body: BodyEnd::Complete,
            sent: 0,
            elapsed: Duration::from_millis(12),
            retry: None,
            then: None,
            token_request: false,
        }
    }

    #[test]
    fn lines_read_as_the_module_header_shows() {
        let mut e = exchange(
            "GET",
            "https://registry.example/v2/library/busybox/manifests/latest",
            Outcome::Status(200),
        );
        e.received = 1609;
        assert_eq!(
            line(&e),
            "GET https://registry.example/v2/library/busybox/manifests/latest 200 1609 B 12 ms"
        );
        e.retry = Some(2);
        assert!(
            line(&e).ends_with(" 200 1609 B 12 ms (retry 2)"),
            "{}",
            line(&e)
        );

        let mut e = exchange("GET", "http://r/v2/a/manifests/1", Outcome::Status(401));
        e.body = BodyEnd::Unread;
        e.then = Some(Then::Authenticate);
        assert_eq!(
            line(&e),
            "GET http://r/v2/a/manifests/1 401 - 12 ms (authenticating)"
        );

        let mut e = exchange("GET", "http://r/v2/a/blobs/x", Outcome::Status(503));
        e.body = BodyEnd::Unread;
        e.then = Some(Then::RetryIn(Duration::from_millis(150)));
        assert_eq!(
            line(&e),
            "GET http://r/v2/a/blobs/x 503 - 12 ms (retrying in 150 ms)"
        );
    }

    #[test]
    fn uploads_failures_and_cut_bodies_say_so() {
        let mut e = exchange(
            "PUT",
            "http://r/v2/a/blobs/uploads/u?digest=sha256:ab&_state=s3cr3t",
            Outcome::Status(201),
        );
        e.sent = 2048;
        let shown = line(&e);
        assert_eq!(
            shown,
            "PUT http://r/v2/a/blobs/uploads/u?digest=sha256%3Aab&_state=redacted 201 0 B 12 ms (sent 2048 B)"
        );

        let mut e = exchange(
            "GET",
            "http://r/v2/",
            Outcome::Failed("connection refused".into()),
        );
        e.retry = Some(1);
        assert_eq!(
            line(&e),
            "GET http://r/v2/ failed 12 ms (connection refused, retry 1)"
        );

        let mut e = exchange("GET", "http://r/b", Outcome::Status(200));
        e.received = 100;
        e.body = BodyEnd::Cut {
            expected: Some(300),
            error: Some("connection reset".into()),
        };
        assert_eq!(
            line(&e),
            "GET http://r/b 200 100 of 300 B 12 ms (body cut: connection reset)"
        );

        let mut e = exchange(
            "GET",
            "http://t/token?scope=repository:a:pull&account=alice",
            Outcome::Status(200),
        );
        e.token_request = true;
        e.received = 10;
        assert_eq!(
            line(&e),
            "GET http://t/token?scope=repository%3Aa%3Apull&account=redacted 200 10 B 12 ms (token)"
        );
    }
}
