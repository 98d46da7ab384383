//! Which proxy, if any, a registry URL goes through: `https_proxy` for `https://`,
//! `http_proxy` for `http://`, `all_proxy` for either, `no_proxy` to bypass, as curl
//! and Go read them. ureq's own `Proxy::try_from_env` is not used: it takes the first
//! of ALL/HTTPS/HTTP_PROXY whatever the URL's scheme, and its NO_PROXY knows neither
//! ports nor CIDR blocks. The selection is made here, per URL; ureq only dials.
//!
//! Where curl and Go differ, curl wins, except that uppercase `HTTP_PROXY` is read
//! (Go, and so podman and skopeo, read it; curl ignores it): lowercase names are
//! looked up first, a leading dot in `no_proxy` matches the domain itself too, and
//! `ALL_PROXY` is the fallback. `HTTP_PROXY` is ignored when `REQUEST_METHOD` is set
//! (a CGI environment, where a client's `Proxy:` header becomes `HTTP_PROXY`).
//! Loopback is never proxied.

use std::fmt;
use std::net::IpAddr;

use crate::oci::reference::host_is_loopback;

/// A proxy URL from the environment. Its user info is a credential: `Debug` and
/// `Display` show the URL without it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    raw: String,
    /// Which variable it came from (`https_proxy`), for messages.
    pub variable: &'static str,
}

impl ProxyUrl {
    /// The URL with its credentials, for ureq only. Never print it.
    pub(super) fn expose(&self) -> &str {
        &self.raw
    }

    /// `http://proxy:3128`: scheme, host and port, without user info.
    pub fn shown(&self) -> String {
        let with_scheme = if self.raw.contains("://") {
            self.raw.clone()
        } else {
            format!("http://{}", self.raw)
        };
        match url::Url::parse(&with_scheme) {
            Ok(u) => format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            ),
            Err(_) => "(unparsable proxy URL)".to_string(),
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({} from {})", self.shown(), self.variable)
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.shown(), self.variable)
    }
}

/// The proxy settings of one process environment.
#[derive(Debug, Clone, Default)]
pub struct ProxyEnv {
    https: Option<ProxyUrl>,
    http: Option<ProxyUrl>,
    no_proxy: NoProxy,
}

impl ProxyEnv {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// From any variable lookup (tests pass a map).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&'static str]| {
            names.iter().find_map(|&n| {
                get(n).filter(|v| !v.trim().is_empty()).map(|v| ProxyUrl {
                    raw: v.trim().to_string(),
                    variable: n,
                })
            })
        };
        let cgi = get("REQUEST_METHOD").is_some();
        let all = first(&["all_proxy", "ALL_PROXY"]);
        let http = if cgi {
            first(&["http_proxy"])
        } else {
            first(&["http_proxy", "HTTP_PROXY"])
        };
        ProxyEnv {
            https: first(&["https_proxy", "HTTPS_PROXY"]).or_else(|| all.clone()),
            http: http.or(all),
            no_proxy: NoProxy::parse(
                &get("no_proxy")
                    .or_else(|| get("NO_PROXY"))
                    .unwrap_or_default(),
            ),
        }
    }

    /// The proxy for a request to `scheme://host[:port]`, or `None` to go direct.
    /// `host` is as in a URL (IPv6 in brackets or not); `port` is the effective port.
    pub fn for_target(&self, scheme: &str, host: &str, port: u16) -> Option<&ProxyUrl> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if host_is_loopback(&bracketed(bare)) || self.no_proxy.matches(bare, port) {
            return None;
        }
        match scheme {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }
    }
}

/// `host` as `host_is_loopback` reads it (an IPv6 literal in brackets).
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A parsed `no_proxy` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<NoProxyEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxyEntry {
    /// `*`: nothing is proxied.
    All,
    /// `example.com`, `.example.com`, `*.example.com`: the domain and its subdomains,
    /// on any port or on `port` only.
    Domain { name: String, port: Option<u16> },
    /// `10.0.0.1`, `[::1]:5000`: that address (and port).
    Ip { ip: IpAddr, port: Option<u16> },
    /// `10.0.0.0/8`: addresses in the block, on any port (as Go matches them).
    Cidr { net: IpAddr, bits: u8 },
}

impl NoProxy {
    /// A comma-separated list; blanks are skipped, unparsable entries ignored as
    /// Go and curl ignore them.
    pub fn parse(list: &str) -> Self {
        let entries = list
            .split(',')
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .filter_map(|e| parse_entry(&e))
            .collect();
        NoProxy { entries }
    }

    /// Whether a request to `host` (no brackets) on `port` bypasses the proxy.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|e| match e {
            NoProxyEntry::All => true,
            NoProxyEntry::Ip { ip: want, port: p } => {
                ip == Some(*want) && p.is_none_or(|p| p == port)
            }
            NoProxyEntry::Cidr { net, bits } => ip.is_some_and(|ip| in_block(ip, *net, *bits)),
            NoProxyEntry::Domain { name, port: p } => {
                ip.is_none()
                    && p.is_none_or(|p| p == port)
                    && (host == *name
                        || host
                            .strip_suffix(name.as_str())
                            .is_some_and(|rest| rest.ends_with('.')))
            }
        })
    }
}

fn parse_entry(e: &str) -> Option<NoProxyEntry> {
    if e == "*" {
        return Some(NoProxyEntry::All);
    }
    if let Some((net, bits)) = e.split_once('/') {
        let net: IpAddr = net.parse().ok()?;
        let bits: u8 = bits.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        return (bits <= max).then_some(NoProxyEntry::Cidr { net, bits });
    }
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(NoProxyEntry::Ip { ip, port: None });
    }
    // `[v6]` or `[v6]:port`
    if let Some(rest) = e.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: IpAddr = ip.parse().ok()?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some(NoProxyEntry::Ip { ip, port });
    }
    let (name, port) = match e.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
        None => (e, None),
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(NoProxyEntry::Ip { ip, port });
    }
    let name = name.trim_start_matches('*').trim_start_matches('.');
    let name = name.trim_end_matches('.');
    (!name.is_empty()).then(|| NoProxyEntry::Domain {
        name: name.to_string(),
        port,
    })
}

/// Whether `ip` is inside `net/bits` (an IPv4 address is never in an IPv6 block).
fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_vars(|k| m.get(k).cloned())
    }

    fn via(e: &ProxyEnv, scheme: &str, host: &str, port: u16) -> Option<String> {
        e.for_target(scheme, host, port).map(|p| p.shown())
    }

    #[test]
    fn no_proxy_matches_domains_ports_ips_and_blocks() {
        let n = NoProxy::parse(
            " example.com, .corp.lan ,*.wild.org, reg.io:5000, 10.1.2.3, [fd00::1]:443, 192.168.0.0/16, fd10::/16,, bad/99",
        );
        // A domain matches itself and its subdomains, not a longer name.
        assert!(n.matches("example.com", 443));
        assert!(n.matches("a.b.example.com", 80));
        assert!(!n.matches("notexample.com", 443));
        // A leading dot (curl's reading) also matches the domain itself.
        assert!(n.matches("corp.lan", 443));
        assert!(n.matches("registry.corp.lan", 5000));
        assert!(n.matches("x.wild.org", 443));
        assert!(n.matches("WILD.org.", 443));
        // host:port matches that port only.
        assert!(n.matches("reg.io", 5000));
        assert!(!n.matches("reg.io", 443));
        // IP literals match exactly, never as domain suffixes.
        assert!(n.matches("10.1.2.3", 5000));
        assert!(!n.matches("110.1.2.3", 5000));
        assert!(n.matches("fd00::1", 443));
        assert!(!n.matches("fd00::1", 80));
        // CIDR blocks, v4 and v6.
        assert!(n.matches("192.168.44.1", 80));
        assert!(!n.matches("192.169.0.1", 80));
        assert!(n.matches("fd10:abcd::5", 80));
        assert!(!n.matches("fd11::5", 80));
        assert!(!n.matches("10.1.2.4", 80));
        assert!(NoProxy::parse("*").matches("anything.at.all", 1));
        assert!(!NoProxy::parse("").matches("example.com", 443));
        assert!(NoProxy::parse("10.0.0.0/0").matches("99.1.1.1", 1));
    }

    #[test]
    fn the_proxy_follows_the_scheme() {
        let e = env(&[
            ("HTTPS_PROXY", "http://secure-proxy:3128"),
            ("http_proxy", "plain-proxy:8080"),
            ("NO_PROXY", "skip.lan"),
        ]);
        assert_eq!(
            via(&e, "https", "reg.io", 443).as_deref(),
            Some("http://secure-proxy:3128")
        );
        assert_eq!(
            via(&e, "http", "reg.io", 80).as_deref(),
            Some("http://plain-proxy:8080")
        );
        assert_eq!(via(&e, "https", "a.skip.lan", 443), None);
        // Loopback is never proxied, whatever the list says.
        for host in ["127.0.0.1", "localhost", "::1", "[::1]", "127.8.9.10"] {
            assert_eq!(via(&e, "https", host, 5000), None, "{host}");
        }
        // Only one of the two set: the other scheme goes direct.
        let only_https = env(&[("https_proxy", "http://p:1")]);
        assert_eq!(via(&only_https, "http", "reg.io", 80), None);
    }

    #[test]
    fn lowercase_first_all_proxy_last_and_cgi_guard() {
        let e = env(&[
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:2"),
            ("ALL_PROXY", "http://all:3"),
        ]);
        assert_eq!(via(&e, "http", "r", 80).as_deref(), Some("http://lower:1"));
        assert_eq!(via(&e, "https", "r", 443).as_deref(), Some("http://all:3"));
        let upper = env(&[("HTTP_PROXY", "http://upper:2")]);
        assert_eq!(
            via(&upper, "http", "r", 80).as_deref(),
            Some("http://upper:2")
        );
        let cgi = env(&[("HTTP_PROXY", "http://evil:2"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(via(&cgi, "http", "r", 80), None);
        let lower_no = env(&[("https_proxy", "http://p:1"), ("no_proxy", "r")]);
        assert_eq!(via(&lower_no, "https", "r", 443), None);
    }

    #[test]
    fn proxy_credentials_never_shown() {
        let e = env(&[("https_proxy", "http://alice:s3cret@proxy.lan:3128")]);
        let p = e.for_target("https", "reg.io", 443).unwrap();
        for shown in [format!("{p}"), format!("{p:?}"), format!("{e:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(!shown.contains("alice"), "{shown}");
        }
        assert_eq!(p.shown(), "http://proxy.lan:3128");
        assert_eq!(p.expose(), "http://alice:s3cret@proxy.lan:3128");
    }
}
