//! A private CA made by `openssl` (an independent tool, not the rustls stack ocibench
//! uses): a CA certificate, a server certificate for an IP address (subjectAltName
//! `IP:...`), and a client certificate, all PEM files in a temp dir, EC P-256 keys.

use std::path::{Path, PathBuf};

use super::tools;

/// The files of one test CA.
#[derive(Debug)]
pub struct OpensslCa {
    dir: tempfile::TempDir,
}

impl OpensslCa {
    /// A CA, a server certificate valid for `server_ip`, and a client certificate.
    pub fn new(server_ip: &str) -> OpensslCa {
        let dir = tempfile::Builder::new()
            .prefix("ocibench-ca-")
            .tempdir()
            .expect("temp dir for the CA");
        let ca = OpensslCa { dir };
        let d = ca.dir.path();
        let openssl = || {
            let mut c = tools::command("openssl", "openssl");
            c.current_dir(d);
            c
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        tools::run(openssl().args(["req", "-x509"]).args(ec).args([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=ocibench test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]));
        for (name, ext) in [
            (
                "server",
                format!("subjectAltName=IP:{server_ip}\nextendedKeyUsage=serverAuth\n"),
            ),
            ("client", "extendedKeyUsage=clientAuth\n".to_string()),
        ] {
            std::fs::write(d.join(format!("{name}.ext")), ext).expect("write ext file");
            tools::run(openssl().arg("req").args(ec).args([
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN=ocibench test {name}"),
            ]));
            tools::run(openssl().args([
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{name}.crt"),
                "-extfile",
                &format!("{name}.ext"),
            ]));
        }
        ca
    }

    /// `ca.crt`, `server.crt`, `server.key`, `client.crt`, `client.key`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fills `dir` as containers-certs.d(5) wants it: `ca.crt`, and with `client`,
    /// `client.cert` + `client.key`.
    pub fn fill_cert_dir(&self, dir: &Path, client: bool) {
        std::fs::create_dir_all(dir).expect("mkdir cert dir");
        std::fs::copy(self.file("ca.crt"), dir.join("ca.crt")).expect("copy ca.crt");
        if client {
            std::fs::copy(self.file("client.crt"), dir.join("client.cert")).expect("copy cert");
            std::fs::copy(self.file("client.key"), dir.join("client.key")).expect("copy key");
        }
    }
}
