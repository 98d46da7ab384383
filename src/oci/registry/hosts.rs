//! How a connection to one registry host is made: its scheme (HTTPS; plain HTTP on
//! loopback; plain HTTP after a failed handshake when the host is insecure, as
//! containers/image falls back), its TLS settings (certs.d roots and client
//! certificate, or no verification), and its proxy. Each (scheme, host, port) gets
//! its own ureq agent, made on first use, because ureq holds TLS and proxy settings
//! per agent.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::RegistryError;
use super::certs_d::{self, CertDirs};
use super::forward_proxy::ForwardProxy;
use super::proxy::ProxyEnv;
use crate::oci::reference::{ImageReference, TlsMode};

/// Everything that decides how a host is reached, fixed when the client is built.
pub(super) struct HostSettings {
    pub(super) tls: TlsMode,
    /// `host[:port]` (lowercase) treated as `--tls-verify=false`.
    pub(super) insecure: HashSet<String>,
    pub(super) certs: CertDirs,
    pub(super) proxies: ProxyEnv,
    /// The longest wait for one read or write.
    pub(super) per_io: Duration,
}

/// The agents of one client, and what it learnt about hosts.
pub(super) struct Hosts {
    settings: HostSettings,
    agents: Mutex<HashMap<String, ureq::Agent>>,
    /// Insecure hosts that answered HTTPS with plain HTTP: spoken to over HTTP
    /// for the rest of the command.
    plain_http: Mutex<HashSet<String>>,
    /// Hosts that answered over HTTPS once: a connection that breaks later is a
    /// broken connection, never a reason to fall back to plain HTTP.
    spoke_tls: Mutex<HashSet<String>>,
}

impl Hosts {
    pub(super) fn new(settings: HostSettings) -> Self {
        Hosts {
            settings,
            agents: Mutex::default(),
            plain_http: Mutex::default(),
            spoke_tls: Mutex::default(),
        }
    }

    /// Default TLS, no certs.d, no proxy: for unit tests.
    #[cfg(test)]
    pub(super) fn direct() -> Self {
        Hosts::new(HostSettings {
            tls: TlsMode::Auto,
            insecure: HashSet::new(),
            certs: CertDirs::default(),
            proxies: ProxyEnv::default(),
            per_io: Duration::from_secs(2),
        })
    }

    /// Whether certificate checks are off for `host_port` and it may fall back
    /// to plain HTTP.
    pub(super) fn is_insecure(&self, host_port: &str) -> bool {
        self.settings.tls == TlsMode::Insecure
            || self
                .settings
                .insecure
                .contains(&host_port.to_ascii_lowercase())
    }

    /// `https://HOST`, or `http://HOST` on loopback or after a fallback.
    pub(super) fn base_url(&self, image: &ImageReference) -> String {
        let host = image.api_host();
        let plain = image.is_loopback()
            || self
                .plain_http
                .lock()
                .expect("plain_http lock")
                .contains(&host.to_ascii_lowercase());
        format!("{}://{host}", if plain { "http" } else { "https" })
    }

    /// Remembers that `host_port` answered over HTTPS.
    pub(super) fn answered_over_tls(&self, host_port: &str) {
        self.spoke_tls
            .lock()
            .expect("spoke_tls lock")
            .insert(host_port.to_ascii_lowercase());
    }

    /// Whether `host_port` may still fall back to plain HTTP: it is insecure and
    /// has not answered over HTTPS.
    pub(super) fn may_fall_back(&self, host_port: &str) -> bool {
        self.is_insecure(host_port)
            && !self
                .spoke_tls
                .lock()
                .expect("spoke_tls lock")
                .contains(&host_port.to_ascii_lowercase())
    }

    /// Remembers that `host_port` speaks plain HTTP (only ever for insecure hosts).
    pub(super) fn fall_back_to_http(&self, host_port: &str) {
        self.plain_http
            .lock()
            .expect("plain_http lock")
            .insert(host_port.to_ascii_lowercase());
    }

    /// The agent for `url`'s scheme and host: made on first use, with the host's
    /// certs.d files read then (a bad file is an error naming it).
    pub(super) fn agent(&self, url: &str) -> Result<ureq::Agent, RegistryError> {
        let bad_url = |detail: String| RegistryError::BadRedirect {
            url: url.into(),
            detail,
        };
        let u = url::Url::parse(url).map_err(|e| bad_url(e.to_string()))?;
        let host = u
            .host_str()
            .ok_or_else(|| bad_url("no host".into()))?
            .to_ascii_lowercase();
        let host_port = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let key = format!("{}://{host_port}", u.scheme());
        if let Some(a) = self.agents.lock().expect("agents lock").get(&key) {
            return Ok(a.clone());
        }
        let port = u.port_or_known_default().unwrap_or(443);
        let agent = self.make_agent(u.scheme(), &host, &host_port, port)?;
        Ok(self
            .agents
            .lock()
            .expect("agents lock")
            .entry(key)
            .or_insert(agent)
            .clone())
    }

    fn make_agent(
        &self,
        scheme: &str,
        host: &str,
        host_port: &str,
        port: u16,
    ) -> Result<ureq::Agent, RegistryError> {
        let s = &self.settings;
        let mut tls = ureq::tls::TlsConfig::builder();
        // Plain HTTP needs no certificates.
        if scheme == "https" {
            let insecure = self.is_insecure(host_port);
            let certs = match s.certs.dir_for(host_port) {
                Some(dir) => {
                    certs_d::load_dir(&dir, s.certs.cert_dir.is_some()).map_err(|source| {
                        RegistryError::Certificates {
                            host: host_port.to_string(),
                            source: Box::new(source),
                        }
                    })?
                }
                None => certs_d::HostCerts::default(),
            };
            let roots = if certs.roots.is_empty() || insecure {
                ureq::tls::RootCerts::PlatformVerifier
            } else {
                // The system's roots (which honour SSL_CERT_FILE/SSL_CERT_DIR, as
                // the platform verifier does) plus the directory's.
                let mut all: Vec<ureq::tls::Certificate<'static>> =
                    rustls_native_certs::load_native_certs()
                        .certs
                        .iter()
                        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                        .collect();
                all.extend(
                    certs
                        .roots
                        .iter()
                        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()),
                );
                ureq::tls::RootCerts::Specific(Arc::new(all))
            };
            let client = certs.client.as_ref().map(|(chain, key)| {
                let chain: Vec<ureq::tls::Certificate<'static>> = chain
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
                // ureq takes a key as DER with a kind it does not export, or as
                // PEM: the key goes back to PEM, labelled by its kind.
                let label = match key {
                    rustls_pki_types::PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
                    rustls_pki_types::PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
                    _ => "PRIVATE KEY",
                };
                let pem = pem_block(label, key.secret_der());
                let key = ureq::tls::PrivateKey::from_pem(pem.as_bytes())
                    .expect("a key read from PEM reads back");
                ureq::tls::ClientCert::new_with_certs(&chain, key)
            });
            tls = tls
                .root_certs(roots)
                .client_cert(client)
                .disable_verification(insecure);
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls.build())
            .user_agent(concat!("ocibench/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(s.per_io))
            .timeout_per_write(Some(s.per_io))
            .max_idle_connections_per_host(16);
        let Some(p) = s.proxies.for_target(scheme, host, port) else {
            // No proxy; also none of ureq's own (it would read the environment).
            return Ok(config.proxy(None).build().into());
        };
        let bad = |detail: String| RegistryError::BadProxy {
            proxy: p.to_string(),
            detail,
        };
        if scheme == "http" {
            // Plain HTTP as curl and Go send it: absolute-form requests to the proxy.
            let forward = ForwardProxy::parse(p.expose()).map_err(bad)?;
            return Ok(forward.agent(config.proxy(None).build()));
        }
        // HTTPS through a CONNECT tunnel. Without ureq's socks-proxy feature a SOCKS
        // URL would not be refused by ureq, only misused: refused here.
        if let Some((proxy_scheme, _)) = p.expose().split_once("://")
            && !matches!(proxy_scheme.to_ascii_lowercase().as_str(), "http" | "https")
        {
            return Err(bad(format!(
                "{proxy_scheme}:// proxies are not supported (http:// and https:// are)"
            )));
        }
        let proxy = ureq::Proxy::new(p.expose()).map_err(|e| bad(e.to_string()))?;
        Ok(config.proxy(Some(proxy)).build().into())
    }
}

/// A PEM block of `der` under `label`.
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(tls: TlsMode, insecure: &[&str], certs: CertDirs) -> Hosts {
        Hosts::new(HostSettings {
            tls,
            insecure: insecure.iter().map(|h| h.to_ascii_lowercase()).collect(),
            certs,
            proxies: ProxyEnv::default(),
            per_io: Duration::from_secs(2),
        })
    }

    fn image(s: &str) -> ImageReference {
        s.parse().unwrap()
    }

    #[test]
    fn insecure_hosts_are_per_host_and_port_and_fall_back_once_told() {
        let h = hosts(TlsMode::Auto, &["Reg.lan:5000"], CertDirs::default());
        assert!(h.is_insecure("reg.lan:5000"));
        assert!(h.is_insecure("REG.LAN:5000"));
        assert!(!h.is_insecure("reg.lan"));
        assert!(!h.is_insecure("reg.lan:5001"));
        let reg = image("reg.lan:5000/app:1");
        assert_eq!(h.base_url(&reg), "https://reg.lan:5000");
        assert!(h.may_fall_back("reg.lan:5000"));
        h.fall_back_to_http("reg.lan:5000");
        assert_eq!(h.base_url(&reg), "http://reg.lan:5000");
        // A host that answered over HTTPS once never falls back.
        let tls = hosts(TlsMode::Insecure, &[], CertDirs::default());
        assert!(tls.may_fall_back("reg.lan:5000"));
        tls.answered_over_tls("REG.lan:5000");
        assert!(!tls.may_fall_back("reg.lan:5000"));
        assert!(!h.may_fall_back("other.lan:5000"));
        assert_eq!(
            h.base_url(&image("other.lan:5000/app:1")),
            "https://other.lan:5000"
        );
        // Loopback stays plain HTTP, as before.
        assert_eq!(
            h.base_url(&image("127.0.0.1:5000/app:1")),
            "http://127.0.0.1:5000"
        );
        let all = hosts(TlsMode::Insecure, &[], CertDirs::default());
        assert!(all.is_insecure("anything.example"));
    }

    #[test]
    fn a_hosts_bad_cert_dir_fails_its_agent_only() {
        let t = tempfile::tempdir().unwrap();
        let bad = t.path().join("bad.lan:5000");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("ca.crt"), "not PEM").unwrap();
        let h = hosts(
            TlsMode::Auto,
            &[],
            CertDirs {
                cert_dir: None,
                per_host_parents: vec![t.path().to_path_buf()],
            },
        );
        let err = h.agent("https://bad.lan:5000/v2/").unwrap_err();
        assert!(
            matches!(&err, RegistryError::Certificates { host, .. } if host == "bad.lan:5000"),
            "{err:?}"
        );
        // Plain HTTP needs no certificates; other hosts are not affected.
        assert!(h.agent("http://bad.lan:5000/v2/").is_ok());
        assert!(h.agent("https://good.lan/v2/").is_ok());
    }

    #[test]
    fn socks_proxies_are_refused_not_ignored() {
        let mut h = hosts(TlsMode::Auto, &[], CertDirs::default());
        h.settings.proxies =
            ProxyEnv::from_vars(|k| (k == "https_proxy").then(|| "socks5://u:pw@p:1080".into()));
        let err = h.agent("https://reg.lan/v2/").unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad proxy socks5://p:1080 (from https_proxy): socks5:// proxies are not supported (http:// and https:// are)"
        );
        assert!(h.agent("http://reg.lan/v2/").is_ok());
    }
}
