//! `WWW-Authenticate` values (RFC 7235), as a registry or a man in the middle
//! sends them. Schemes and parameter names come out lowercased; challenges whose
//! scheme and names are RFC tokens survive being written back (every value
//! quoted and escaped) and parsed again.

use ocibench::oci::registry::auth::{Challenge, parse_challenges};

pub fn run(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let challenges = parse_challenges(header);
    for c in &challenges {
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase(), "{header:?}");
        for name in c.params.keys() {
            assert_eq!(*name, name.to_ascii_lowercase(), "{header:?}");
        }
        for (name, value) in &c.params {
            assert_eq!(c.param(name), Some(value.as_str()));
        }
    }
    let writable = challenges
        .iter()
        .all(|c| is_token(&c.scheme) && c.params.keys().all(|k| is_token(k)));
    if writable {
        let written = write(&challenges);
        assert_eq!(
            parse_challenges(&written),
            challenges,
            "{header:?} parses, but written back as {written:?} it parses differently"
        );
    }
}

/// RFC 7230 `token`: one or more tchar.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

fn write(challenges: &[Challenge]) -> String {
    challenges
        .iter()
        .map(|c| {
            let mut params: Vec<_> = c.params.iter().collect();
            params.sort();
            let params: Vec<String> = params
                .into_iter()
                .map(|(k, v)| {
                    let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
                    format!("{k}=\"{escaped}\"")
                })
                .collect();
            if params.is_empty() {
                c.scheme.clone()
            } else {
                format!("{} {}", c.scheme, params.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
