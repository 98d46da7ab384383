//! Why a file the user gave could not be parsed, by position and kind, never by
//! its text.
//!
//! Parsers quote their input: the tar crate puts a bad header's bytes (the first
//! 100 bytes of the file: an auth.json's token, /etc/passwd's first lines) in its
//! error, serde quotes the value of a wrong type (`invalid type: string "..."`),
//! toml shows the offending source line. Error messages end up in CI logs, so
//! errors about user files are built from this module's types, which keep the
//! line, the column and the kind of problem, and drop the rest (the original
//! error is not kept as a `source` either: the chain printer would show it).

use std::io;

/// A JSON or TOML document that did not parse, without any of its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}{}", position(*line, *column))]
pub struct ParseError {
    /// What is wrong, in the parser's words minus any quoted input.
    pub problem: String,
    /// 1-based, where the parser knows it.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

impl ParseError {
    /// serde_json's error: syntax messages are kept (they never quote input);
    /// data messages lose the values they quote.
    pub fn json(e: &serde_json::Error) -> ParseError {
        use serde_json::error::Category;
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&suffix).unwrap_or(&full);
        let problem = match e.classify() {
            Category::Syntax | Category::Eof => message.to_string(),
            Category::Data => data_message(message).unwrap_or_else(|| "invalid value".to_string()),
            Category::Io => "cannot be read".to_string(),
        };
        ParseError {
            problem,
            line: (line > 0).then_some(line),
            column: (column > 0).then_some(column),
        }
    }

    /// toml's error, positioned in `text` (the document it parsed); its message
    /// without the quoted source line, and without quoted values.
    pub fn toml(e: &toml::de::Error, text: &str) -> ParseError {
        let message = e.message().trim().replace('\n', "; ");
        let problem = data_message(&message).unwrap_or(message);
        let (line, column) = match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        ParseError {
            problem,
            line,
            column,
        }
    }
}

/// serde's standard data messages with the quoted input removed; `None` for a
/// message of another shape (a custom one may quote anything).
fn data_message(m: &str) -> Option<String> {
    // serde words its expectations from our types, never from the input.
    let expected = |rest: &str| {
        rest.rfind(", expected ")
            .map(|i| rest[i..].to_string())
            .unwrap_or_default()
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = m.strip_prefix(prefix) {
            // `string "secret"`, `integer `5``, `map`: keep the kind only.
            let kind = rest.split(['"', '`', ',']).next().unwrap_or("").trim();
            return Some(format!("{prefix}{kind}{}", expected(rest)));
        }
    }
    for (prefix, says) in [
        ("unknown variant ", "unknown variant"),
        ("unknown field ", "unknown field"),
    ] {
        if let Some(rest) = m.strip_prefix(prefix) {
            return Some(format!("{says}{}", expected(rest)));
        }
    }
    // Counts and the names of our own fields.
    ["invalid length ", "missing field ", "duplicate field "]
        .iter()
        .any(|p| m.starts_with(p))
        .then(|| m.to_string())
}

/// Why a tar stream could not be unpacked, without the tar crate's text (which
/// quotes header bytes and entry names).
#[derive(Debug)]
pub enum TarProblem {
    /// The system failed (disk full, permission denied): this error, bare.
    System(io::Error),
    /// Not a tar archive, or a damaged or truncated one.
    Format,
}

impl TarProblem {
    /// Sorts an error of `tar::Archive`: an OS error anywhere in its chain is the
    /// system's; anything else is the archive's format.
    pub fn of(e: &io::Error) -> TarProblem {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = current {
            if let Some(io) = err.downcast_ref::<io::Error>() {
                if let Some(code) = io.raw_os_error() {
                    return TarProblem::System(io::Error::from_raw_os_error(code));
                }
                // io::Error's `source` skips its payload: look inside it too.
                if let Some(inner) = io.get_ref() {
                    current = Some(inner);
                    continue;
                }
            }
            current = err.source();
        }
        TarProblem::Format
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2";

    #[test]
    fn json_data_errors_lose_their_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            layers: Vec<String>,
            port: u16,
        }
        for (text, want) in [
            (
                r#"{"layers":"hunter2","port":1}"#,
                "invalid type: string, expected a sequence at line 1, column 19",
            ),
            (
                r#"{"layers":[],"port":-7}"#,
                "invalid value: integer, expected u16 at line 1, column 22",
            ),
            (
                r#"{"layers":[]}"#,
                "missing field `port` at line 1, column 13",
            ),
            (
                "{\"layers\": [hunter2",
                "expected value at line 1, column 13",
            ),
        ] {
            let e = serde_json::from_str::<T>(text).unwrap_err();
            let p = ParseError::json(&e);
            assert_eq!(p.to_string(), want, "{text}");
            assert!(!p.to_string().contains(SECRET));
        }
    }

    #[test]
    fn custom_json_errors_are_generic() {
        let e =
            serde_json::from_str::<crate::oci::digest::Digest>(r#""sha256:hunter2""#).unwrap_err();
        let p = ParseError::json(&e);
        assert!(!p.to_string().contains(SECRET), "{p}");
        assert!(p.to_string().starts_with("invalid value"), "{p}");
    }

    #[test]
    fn toml_errors_keep_the_position_only() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            port: u16,
        }
        let text = "# x\nport = \"hunter2\"\n";
        let p = ParseError::toml(&toml::from_str::<T>(text).unwrap_err(), text);
        assert_eq!(p.line, Some(2), "{p}");
        assert!(!p.to_string().contains(SECRET), "{p}");
        assert!(p.to_string().contains("expected u16"), "{p}");
        let text = "a = 1\nhunter2 hunter2\n";
        let p = ParseError::toml(&toml::from_str::<toml::Value>(text).unwrap_err(), text);
        assert_eq!((p.line, p.column), (Some(2), Some(9)), "{p}");
        assert!(!p.to_string().contains(SECRET), "{p}");
    }

    #[test]
    fn tar_errors_are_system_or_format() {
        let mut ar = tar::Archive::new(&b"root:hunter2:0:0"[..]);
        let dir = tempfile::tempdir().unwrap();
        let e = ar.unpack(dir.path()).unwrap_err();
        assert!(matches!(TarProblem::of(&e), TarProblem::Format), "{e}");
        let os = io::Error::other(io::Error::from_raw_os_error(libc::ENOSPC));
        match TarProblem::of(&os) {
            TarProblem::System(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC)),
            TarProblem::Format => panic!("an OS error is the system's"),
        }
    }
}
