//! The readiness probe: one HTTP/1.0 GET over a std `TcpStream`, status line only.
//!
//! Deliberately tiny and blocking: it runs a few times per second while a
//! container starts, and must not share anything with the load generator.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// An HTTP answer: its status code and status line.
    Status { code: u16, line: String },
    /// No HTTP answer (refused, reset, timed out, not HTTP).
    NoAnswer(String),
}

impl ProbeResult {
    pub fn is_success(&self) -> bool {
        matches!(self, ProbeResult::Status { code, .. } if (200..300).contains(code))
    }

    /// For messages: `answered "HTTP/1.0 404 Not Found"`, `connection refused`.
    pub fn describe(&self) -> String {
        match self {
            ProbeResult::Status { line, .. } => format!("answered {line:?}"),
            ProbeResult::NoAnswer(why) => why.clone(),
        }
    }
}

/// GET `path` from 127.0.0.1:`port`, waiting at most `timeout` for each step.
pub fn probe(port: u16, path: &str, timeout: Duration) -> ProbeResult {
    match get_status_line(port, path, timeout) {
        Ok(line) => match parse_status_line(&line) {
            Some(code) => ProbeResult::Status { code, line },
            None => ProbeResult::NoAnswer(format!("not an HTTP answer: {line:?}")),
        },
        Err(e) => ProbeResult::NoAnswer(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::ConnectionReset => "connection reset".into(),
            std::io::ErrorKind::UnexpectedEof => "connection closed without an answer".into(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                "no answer in time".into()
            }
            _ => e.to_string(),
        }),
    }
}

fn get_status_line(port: u16, path: &str, timeout: Duration) -> std::io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    // One write: `write!` on the socket would send each formatted piece in its own
    // segment, and a server that reads the request once (or closes after its first
    // read) would see half of it; Nagle would also hold back the later pieces.
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: ocibench-probe\r\nAccept: */*\r\n\r\n"
    );
    s.write_all(request.as_bytes())?;
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 1024 {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if buf.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let end = buf.iter().position(|b| *b == b'\n').unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).trim_end().to_string())
}

/// `HTTP/1.1 204 No Content` -> 204.
pub fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line("HTTP/1.0 200 OK"), Some(200));
        assert_eq!(parse_status_line("HTTP/1.1 404 Not Found"), Some(404));
        assert_eq!(parse_status_line("HTTP/1.1 204"), Some(204));
        assert_eq!(parse_status_line("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status_line("HTTP/1.1 20x OK"), None);
    }

    fn serve_once(answer: &'static [u8]) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = [0u8; 512];
            let _ = s.read(&mut req);
            s.write_all(answer).unwrap();
        });
        port
    }

    #[test]
    fn probes_a_server() {
        let port = serve_once(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let r = probe(port, "/health", Duration::from_secs(2));
        assert!(r.is_success(), "{r:?}");
        let port = serve_once(b"HTTP/1.1 404 Not Found\r\n\r\n");
        let r = probe(port, "/missing", Duration::from_secs(2));
        assert!(!r.is_success());
        assert_eq!(r.describe(), "answered \"HTTP/1.1 404 Not Found\"");
    }

    #[test]
    fn refused_port() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = probe(port, "/", Duration::from_secs(1));
        assert_eq!(r, ProbeResult::NoAnswer("connection refused".into()));
    }
}
