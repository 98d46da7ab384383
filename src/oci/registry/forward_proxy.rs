//! Plain-HTTP requests through an HTTP proxy as curl and Go send them: to the proxy,
//! with the request line in absolute form (`GET http://host:port/v2/ HTTP/1.1`) and
//! `Proxy-Authorization`. ureq itself only tunnels (CONNECT), which proxies often
//! allow to port 443 alone (squid's default `SSL_ports`), so a LAN registry on port
//! 5000 behind such a proxy would be refused.
//!
//! Built from ureq's connector parts: a resolver that answers the proxy's addresses
//! whatever the URL's host (the proxy resolves the registry's name, as with curl),
//! ureq's TCP connector, and a transport that rewrites each request's first line.
//! ureq sends one request at a time on a connection and reads its response before
//! the next, so "a new request starts" is "the first write after a read".

use std::fmt;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, NextTimeout, TcpConnector, Transport,
};

/// A forward proxy: where it listens and what to add to each request.
#[derive(Clone)]
pub(super) struct ForwardProxy {
    /// `http://proxy:3128` (no user info).
    uri: Uri,
    /// `Proxy-Authorization: Basic ...\r\n`, or empty.
    auth_line: String,
}

impl fmt::Debug for ForwardProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The authorization line is a credential.
        write!(f, "ForwardProxy({})", self.uri)
    }
}

impl ForwardProxy {
    /// From a proxy URL (`http://[user:pass@]host[:port]`; the scheme may be left out).
    pub(super) fn parse(raw: &str) -> Result<Self, String> {
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("http://{raw}")
        };
        let u = url::Url::parse(&with_scheme).map_err(|e| e.to_string())?;
        if u.scheme() != "http" {
            return Err(format!(
                "{}:// proxies are not supported for plain-HTTP registries (http:// is)",
                u.scheme()
            ));
        }
        let host = u.host_str().ok_or("no host")?;
        let port = u.port().unwrap_or(80);
        let uri: Uri = format!("http://{host}:{port}")
            .parse()
            .map_err(|e: ureq::http::uri::InvalidUri| e.to_string())?;
        let auth_line = if u.username().is_empty() && u.password().is_none() {
            String::new()
        } else {
            use base64::Engine;
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let pair = format!(
                "{}:{}",
                decode(u.username()),
                decode(u.password().unwrap_or(""))
            );
            format!(
                "Proxy-Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        };
        Ok(ForwardProxy { uri, auth_line })
    }

    /// An agent sending every request of `config` to this proxy in absolute form.
    pub(super) fn agent(&self, config: Config) -> ureq::Agent {
        let connector =
            ().chain(TcpConnector::default())
                .chain(AbsoluteFormConnector(self.clone()));
        ureq::Agent::with_parts(config, connector, ProxyResolver(self.uri.clone()))
    }
}

/// Resolves every URL to the proxy's addresses.
#[derive(Debug)]
struct ProxyResolver(Uri);

impl Resolver for ProxyResolver {
    fn resolve(
        &self,
        _uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        DefaultResolver::default().resolve(&self.0, config, timeout)
    }
}

/// Wraps the TCP connection to the proxy in an [`AbsoluteForm`] transport.
#[derive(Debug)]
struct AbsoluteFormConnector(ForwardProxy);

impl<In: Transport> Connector<In> for AbsoluteFormConnector {
    type Out = AbsoluteForm;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(inner) = chained else {
            return Ok(None);
        };
        let origin = match (details.uri.scheme_str(), details.uri.authority()) {
            (Some(s), Some(a)) => format!("{s}://{a}"),
            _ => return Err(ureq::Error::BadUri(details.uri.to_string())),
        };
        Ok(Some(AbsoluteForm {
            inner: inner.boxed(),
            origin,
            auth_line: self.0.auth_line.clone(),
            at_request_start: true,
        }))
    }
}

/// A connection to the proxy that puts each request line in absolute form.
struct AbsoluteForm {
    inner: Box<dyn Transport>,
    /// `http://registry:5000`, the part the request line gains.
    origin: String,
    auth_line: String,
    at_request_start: bool,
}

impl fmt::Debug for AbsoluteForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AbsoluteForm({})", self.origin)
    }
}

impl Transport for AbsoluteForm {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if !std::mem::take(&mut self.at_request_start) {
            return self.inner.transmit_output(amount, timeout);
        }
        let written = self.inner.buffers().output()[..amount].to_vec();
        let rewritten = absolute_form(&written, &self.origin, &self.auth_line);
        // The output buffer is free again once sent: refill it as often as needed.
        let mut rest = rewritten.as_slice();
        while !rest.is_empty() {
            let out = self.inner.buffers().output();
            let n = out.len().min(rest.len());
            out[..n].copy_from_slice(&rest[..n]);
            self.inner.transmit_output(n, timeout)?;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        // Reading means the request went out whole: the next write is a new request.
        self.at_request_start = true;
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }
}

/// `head` (a request's first bytes) with an origin-form target made absolute and the
/// proxy's authorization added after the request line; anything else unchanged.
fn absolute_form(head: &[u8], origin: &str, auth_line: &str) -> Vec<u8> {
    let Some(line_end) = head.windows(2).position(|w| w == b"\r\n") else {
        return head.to_vec();
    };
    let line = &head[..line_end];
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return head.to_vec();
    };
    if line.get(space + 1) != Some(&b'/') {
        return head.to_vec();
    }
    let mut out = Vec::with_capacity(head.len() + origin.len() + auth_line.len());
    out.extend_from_slice(&line[..=space]);
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(&line[space + 1..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(auth_line.as_bytes());
    out.extend_from_slice(&head[line_end + 2..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_become_absolute_and_carry_the_proxy_authorization() {
        let head = b"GET /v2/a/manifests/1 HTTP/1.1\r\nhost: r:5000\r\n\r\nbody";
        assert_eq!(
            String::from_utf8(absolute_form(
                head,
                "http://r:5000",
                "Proxy-Authorization: Basic eDp5\r\n"
            ))
            .unwrap(),
            "GET http://r:5000/v2/a/manifests/1 HTTP/1.1\r\nProxy-Authorization: Basic eDp5\r\nhost: r:5000\r\n\r\nbody"
        );
        // Not a request line in origin form: left alone.
        assert_eq!(absolute_form(b"abc", "http://r", ""), b"abc");
        assert_eq!(
            absolute_form(b"GET http://x/ HTTP/1.1\r\n\r\n", "http://r", ""),
            b"GET http://x/ HTTP/1.1\r\n\r\n"
        );
    }

    #[test]
    fn proxy_urls_parse_with_percent_encoded_credentials_never_shown() {
        let p = ForwardProxy::parse("http://al%40ice:p%3Ass@proxy.lan:3128").unwrap();
        assert_eq!(p.uri.to_string(), "http://proxy.lan:3128/");
        // base64("al@ice:p:ss")
        assert_eq!(
            p.auth_line,
            "Proxy-Authorization: Basic YWxAaWNlOnA6c3M=\r\n"
        );
        assert!(!format!("{p:?}").contains("YWxA"));
        let bare = ForwardProxy::parse("proxy.lan").unwrap();
        assert_eq!(bare.uri.to_string(), "http://proxy.lan:80/");
        assert!(bare.auth_line.is_empty());
        assert!(ForwardProxy::parse("https://proxy.lan").is_err());
    }
}
