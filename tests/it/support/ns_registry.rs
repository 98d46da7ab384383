//! The Distribution registry (`docker-registry`) inside a test's [`NetNs`], at the
//! namespace's non-loopback address, over plain HTTP or HTTPS (`http.tls.certificate`,
//! `http.tls.key`, and `http.tls.clientcas` to require a client certificate), with
//! fixtures pushed by skopeo from inside the namespace. Apart from [`super::registry`]
//! because that one is loopback-only and probes over plain HTTP; in a namespace of the
//! test's own no other process can take the port, so a TCP probe is enough.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::fixtures::{FixtureImage, Variant, fixture_layout};
use super::netns::{NS_ADDR, NetNs};
use super::openssl_ca::OpensslCa;
use super::tools;

/// How the registry serves.
pub enum Serve<'a> {
    PlainHttp,
    /// HTTPS with the CA's server certificate; `require_client_cert`: only clients
    /// with a certificate from the CA are let in.
    Tls {
        ca: &'a OpensslCa,
        require_client_cert: bool,
    },
}

/// A registry running in a namespace; killed on drop (before the namespace goes).
pub struct NsRegistry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl NsRegistry {
    pub fn start(ns: &NetNs, serve: Serve<'_>) -> NsRegistry {
        let binary = tools::require("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("ocibench-ns-registry-")
            .tempdir()
            .expect("temp dir for the registry");
        let port = ns.free_port();
        let addr = format!("{NS_ADDR}:{port}");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {addr}\n  secret: ocibench-test-secret\n",
            dir.path().join("storage").display()
        );
        if let Serve::Tls {
            ca,
            require_client_cert,
        } = serve
        {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.file("server.crt").display(),
                ca.file("server.key").display()
            ));
            if require_client_cert {
                yaml.push_str(&format!(
                    "    clientcas:\n      - {}\n",
                    ca.file("ca.crt").display()
                ));
            }
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml).expect("write registry config");
        let mut cmd = ns.command(&binary);
        cmd.arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("access.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap());
        let mut child = cmd.spawn().expect("start docker-registry in the netns");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ns.accepts(&addr) {
            let exited = child.try_wait().expect("try_wait registry");
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "docker-registry in netns {} did not listen on {addr} ({exited:?}); log:\n{}",
                    ns.name(),
                    std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        NsRegistry { child, addr, dir }
    }

    /// `10.77.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `10.77.0.1:PORT/{repo_ref}`.
    pub fn reference(&self, repo_ref: &str) -> String {
        format!("{}/{repo_ref}", self.addr)
    }

    /// Pushes the fixture variant with skopeo run inside `ns` (no TLS checks; the
    /// client certificate from `cert_dir` when given); returns what was pushed.
    pub fn push_fixture(
        &self,
        ns: &NetNs,
        repo_tag: &str,
        cert_dir: Option<&std::path::Path>,
    ) -> FixtureImage {
        let layout = fixture_layout(Variant::Oci);
        let mut cmd = ns.command(tools::require("skopeo", "skopeo"));
        cmd.args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--format",
            "oci",
            "--preserve-digests",
        ]);
        if let Some(d) = cert_dir {
            cmd.arg("--dest-cert-dir").arg(d);
        }
        cmd.arg(layout.oci_ref())
            .arg(format!("docker://{}", self.reference(repo_tag)));
        tools::run(&mut cmd);
        layout.image.clone()
    }

    /// The access log's lines (one per request the registry handled).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for NsRegistry {
    fn drop(&mut self) {
        // `ip netns exec` execs the registry: this pid is the registry itself.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
