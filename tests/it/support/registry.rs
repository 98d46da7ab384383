//! A real CNCF Distribution registry (Debian's `docker-registry`, 2.8) on a free loopback
//! port, with its storage in a temp dir, for tests that pull and push.
//!
//! Requests are counted from the registry's own access log (Apache combined format on
//! the registry's stdout), not through a proxy: the log sees every request on every
//! keep-alive connection exactly as the server handled it, and a proxy would have to
//! parse HTTP framing itself. The line is written by a wrapper around the handler, before
//! Go's server flushes the response's last bytes, so a client that has read a response
//! has (to within microseconds) been logged; [`Registry::mark`] and
//! [`Registry::requests_since`] also make a sentinel request first and wait until it is
//! logged. Requests made by this support itself (User-Agent `ocibench-test-support*`)
//! are left out of the counts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::http::{self, HttpResponse};
use super::tools;

const PROBE_AGENT: &str = "ocibench-test-support-probe";
const SYNC_AGENT: &str = "ocibench-test-support-sync";
const START_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;

/// Options for [`Registry`]: `Registry::builder().htpasswd("u", "p").start()`.
#[derive(Debug, Default, Clone)]
pub struct RegistryBuilder {
    htpasswd: Option<(String, String)>,
    token: Option<TokenAuth>,
    first_port: Option<u16>,
}

/// `auth: token` settings: where clients get tokens and how the registry checks them.
#[derive(Debug, Clone)]
struct TokenAuth {
    realm: String,
    service: String,
    issuer: String,
    rootcertbundle: PathBuf,
}

impl RegistryBuilder {
    /// Requires basic auth (`auth: htpasswd`, bcrypt entry made by `htpasswd -Bbn`).
    pub fn htpasswd(mut self, user: &str, password: &str) -> Self {
        self.htpasswd = Some((user.to_string(), password.to_string()));
        self
    }

    /// Requires bearer tokens (`auth: token`, Docker Hub's flow) from the issuer at
    /// `realm`; see [`super::token::TokenIssuer::registry`].
    pub fn token_auth(
        mut self,
        realm: &str,
        service: &str,
        issuer: &str,
        rootcertbundle: &Path,
    ) -> Self {
        self.token = Some(TokenAuth {
            realm: realm.into(),
            service: service.into(),
            issuer: issuer.into(),
            rootcertbundle: rootcertbundle.into(),
        });
        self
    }

    /// Tries `port` first (then free ports): lets the self-test prove that a port taken
    /// between `free_port()` and the registry's bind is retried.
    #[doc(hidden)]
    pub fn first_port(mut self, port: u16) -> Self {
        self.first_port = Some(port);
        self
    }

    /// Starts the registry and waits until `GET /v2/` answers; panics with its log if it
    /// does not within 10 s.
    pub fn start(self) -> Registry {
        let binary = tools::require("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("ocibench-registry-")
            .tempdir()
            .expect("temp dir for the registry");
        if let Some((user, pass)) = &self.htpasswd {
            let entry = tools::run_stdout(
                tools::command("htpasswd", "apache2-utils").args(["-Bbn", user, pass]),
            );
            std::fs::write(
                dir.path().join("htpasswd"),
                entry.trim_end().to_string() + "\n",
            )
            .expect("write htpasswd");
        }
        let auth = if self.htpasswd.is_some() {
            format!(
                "auth:\n  htpasswd:\n    realm: ocibench-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            )
        } else if let Some(t) = &self.token {
            format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                 rootcertbundle: {}\n",
                t.realm,
                t.service,
                t.issuer,
                t.rootcertbundle.display()
            )
        } else {
            String::new()
        };
        let mut last_log = String::new();
        for attempt in 0..START_ATTEMPTS {
            let port = match self.first_port {
                Some(port) if attempt == 0 => port,
                _ => tools::free_port(),
            };
            match try_start(&binary, dir.path(), port, &auth) {
                Ok(child) => {
                    return Registry {
                        child,
                        addr: format!("127.0.0.1:{port}"),
                        dir,
                        credentials: self.htpasswd,
                        syncs: AtomicUsize::new(0),
                    };
                }
                Err(StartError::PortTaken(log)) => last_log = log,
                Err(StartError::Failed(msg)) => panic!("{msg}"),
            }
        }
        panic!(
            "docker-registry: port taken {START_ATTEMPTS} times in a row; last log:\n{last_log}"
        );
    }
}

enum StartError {
    PortTaken(String),
    Failed(String),
}

fn try_start(binary: &Path, dir: &Path, port: u16, auth: &str) -> Result<Child, StartError> {
    // A per-start token in a response header proves the probe reached *this* process,
    // not another test's registry that won the race for the port.
    let instance = format!("{}-{port}-{:?}", std::process::id(), Instant::now());
    let config = config_yaml(dir, port, auth, &instance);
    let config_path = dir.join("config.yml");
    std::fs::write(&config_path, config).expect("write registry config");
    let access = std::fs::File::create(dir.join("access.log")).expect("create access.log");
    let log = std::fs::File::create(dir.join("registry.log")).expect("create registry.log");
    let mut child = Command::new(binary)
        .arg("serve")
        .arg(&config_path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(access)
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait registry") {
            let log = read_logs(dir);
            return if log.contains("address already in use") {
                Err(StartError::PortTaken(log))
            } else {
                Err(StartError::Failed(format!(
                    "docker-registry exited early ({status}); log:\n{log}"
                )))
            };
        }
        let probe = http::request_with_timeout(
            &addr,
            "GET",
            "/v2/",
            &[("User-Agent", PROBE_AGENT)],
            b"",
            Duration::from_millis(500),
        );
        if let Ok(resp) = probe {
            if resp.header("x-ocibench-instance") == Some(instance.as_str()) {
                return Ok(child);
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(StartError::Failed(format!(
                "docker-registry on {addr} did not answer GET /v2/ within {START_TIMEOUT:?}; \
                 log:\n{}",
                read_logs(dir)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config_yaml(dir: &Path, port: u16, auth: &str, instance: &str) -> String {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
         \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: ocibench-test-secret\n\
         \x20 headers:\n    X-Ocibench-Instance: [\"{instance}\"]\n",
        root = dir.join("storage").display(),
    );
    yaml.push_str(auth);
    yaml
}

fn read_logs(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
    let access = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
    format!("--- registry.log ---\n{log}--- access.log ---\n{access}")
}

/// Where a registry storing into `storage_root` keeps a blob's bytes.
pub fn blob_data_path(storage_root: &Path, digest: &str) -> PathBuf {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    storage_root
        .join("docker/registry/v2/blobs/sha256")
        .join(hex.get(..2).unwrap_or_default())
        .join(hex)
        .join("data")
}

/// A running registry; killed (and its storage deleted) on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
    credentials: Option<(String, String)>,
    syncs: AtomicUsize,
}

/// A point in the registry's access log; see [`Registry::mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMark(usize);

/// One request from the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The request URI as sent (path and query).
    pub uri: String,
    pub status: u16,
    pub user_agent: String,
}

impl LoggedRequest {
    /// `GET /v2/<name>/blobs/<digest>`: a blob download.
    pub fn is_blob_get(&self) -> bool {
        self.method == "GET" && self.path().contains("/blobs/sha256:")
    }

    /// `GET /v2/<name>/manifests/<ref>`.
    pub fn is_manifest_get(&self) -> bool {
        self.method == "GET" && self.path().contains("/manifests/")
    }

    /// A request that writes: blob upload (POST/PATCH/PUT) or manifest PUT.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
    }

    /// The URI without its query string.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    /// Parses one combined-log line:
    /// `127.0.0.1 - - [24/Nov/2026:23:14:02 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`.
    pub fn parse(line: &str) -> Option<LoggedRequest> {
        let mut quoted = line.split('"');
        let _prefix = quoted.next()?;
        let request = quoted.next()?;
        let status_and_size = quoted.next()?;
        let _referer = quoted.next()?;
        let _ = quoted.next()?;
        let user_agent = quoted.next()?.to_string();
        let mut req = request.split(' ');
        let method = req.next()?.to_string();
        let uri = req.next()?.to_string();
        let status = status_and_size.split_whitespace().next()?.parse().ok()?;
        Some(LoggedRequest {
            method,
            uri,
            status,
            user_agent,
        })
    }
}

impl Registry {
    /// Starts an anonymous registry (panics if it cannot).
    pub fn start() -> Registry {
        Registry::builder().start()
    }

    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `127.0.0.1:PORT/{repo_ref}`, e.g. `reference("busybox:1")`.
    pub fn reference(&self, repo_ref: &str) -> String {
        format!("{}/{repo_ref}", self.addr)
    }

    /// `docker://127.0.0.1:PORT/{repo_ref}` (skopeo's transport syntax).
    pub fn docker_ref(&self, repo_ref: &str) -> String {
        format!("docker://{}/{repo_ref}", self.addr)
    }

    /// The htpasswd user and password, if the registry requires them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// `user:pass` for `--creds` style flags, if any.
    pub fn creds_arg(&self) -> Option<String> {
        self.credentials().map(|(u, p)| format!("{u}:{p}"))
    }

    /// The directory the registry was told to store into (`storage.filesystem.rootdirectory`).
    pub fn storage_root(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        blob_data_path(&self.storage_root(), digest)
    }

    /// Whether the registry stores blob `digest` (in any repository).
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_data_path(digest).is_file()
    }

    /// Whether `repo` links layer `digest` (what a push or a cross-repository mount
    /// leaves: `repositories/<repo>/_layers/sha256/<hex>/link`).
    pub fn repo_has_layer(&self, repo: &str, digest: &str) -> bool {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.storage_root()
            .join("docker/registry/v2/repositories")
            .join(repo)
            .join("_layers/sha256")
            .join(hex)
            .join("link")
            .is_file()
    }

    /// The tags of `repo` (`GET /v2/<repo>/tags/list`), empty if the repo is unknown.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let resp = self.request("GET", &format!("/v2/{repo}/tags/list"), &[], b"");
        if resp.status == 404 {
            return Vec::new();
        }
        assert_eq!(resp.status, 200, "tags of {repo}: {}", resp.text());
        let json: serde_json::Value = serde_json::from_slice(&resp.body).expect("tags JSON");
        let mut tags: Vec<String> = json["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
        tags.sort();
        tags
    }

    /// The temp dir holding config, logs and storage.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's own log and access log, for failure messages.
    pub fn logs(&self) -> String {
        read_logs(self.dir.path())
    }

    /// A request straight to the registry (with basic auth when it has credentials).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let auth = self.credentials().map(|(u, p)| http::basic_auth(u, p));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(auth) = &auth {
            all.push(("Authorization", auth));
        }
        http::request(&self.addr, method, path, &all, body)
            .unwrap_or_else(|e| panic!("{method} {} {path}: {e}\n{}", self.addr, self.logs()))
    }

    /// Uploads `bytes` as a blob of `repo` named `digest` (POST, then PUT with the
    /// digest: the monolithic upload every registry takes), by raw API.
    pub fn upload_blob(&self, repo: &str, bytes: &[u8], digest: &str) {
        let start = self.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
        assert_eq!(start.status, 202, "{}", start.text());
        let location = start.header("location").expect("upload location");
        let path = location
            .strip_prefix(&format!("http://{}", self.addr))
            .unwrap_or(location);
        let sep = if path.contains('?') { '&' } else { '?' };
        let put = self.request(
            "PUT",
            &format!("{path}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(put.status, 201, "{}", put.text());
    }

    /// `GET` without credentials, whatever the registry requires.
    pub fn get_anonymous(&self, path: &str) -> HttpResponse {
        http::request(&self.addr, "GET", path, &[], b"")
            .unwrap_or_else(|e| panic!("GET {} {path}: {e}", self.addr))
    }

    /// Fetches a manifest accepting all four manifest media types; returns the response
    /// (`Content-Type`, `Docker-Content-Digest`, raw body).
    pub fn manifest(&self, repo: &str, reference: &str) -> HttpResponse {
        let resp = self.request(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", super::media::ALL_MANIFEST_TYPES)],
            b"",
        );
        assert_eq!(
            resp.status,
            200,
            "GET manifest {repo}:{reference}: {}",
            resp.text()
        );
        resp
    }

    /// `skopeo inspect --tls-verify=false EXTRA docker://ADDR/REPO_REF`, with the registry's
    /// credentials if it has any: what an independent client reads (raw bytes of stdout).
    pub fn skopeo_inspect(&self, repo_ref: &str, extra: &[&str]) -> Vec<u8> {
        let mut cmd = tools::skopeo();
        cmd.args(["inspect", "--tls-verify=false"]).args(extra);
        if let Some(creds) = self.creds_arg() {
            cmd.arg("--creds").arg(creds);
        }
        tools::run(cmd.arg(self.docker_ref(repo_ref))).stdout
    }

    /// Asserts the registry holds `repo_tag` whole: the manifest skopeo reads has
    /// `manifest_digest`, every blob it names is stored whole (its bytes hash to its
    /// digest), and skopeo copies the image back out, verifying each blob.
    #[track_caller]
    pub fn assert_holds(&self, repo_tag: &str, manifest_digest: &str) {
        let raw = self.skopeo_inspect(repo_tag, &["--raw"]);
        assert_eq!(tools::sha256_bytes(&raw), manifest_digest, "{repo_tag}");
        let manifest: serde_json::Value = serde_json::from_slice(&raw).expect("manifest JSON");
        let blobs = std::iter::once(&manifest["config"])
            .chain(manifest["layers"].as_array().expect("layers"))
            .map(|d| d["digest"].as_str().expect("digest").to_string());
        for d in blobs {
            assert_eq!(
                tools::sha256_file(&self.blob_data_path(&d)),
                d,
                "stored blob"
            );
        }
        let out = tempfile::tempdir().expect("temp dir for the copy");
        let mut copy = tools::skopeo();
        copy.args(["copy", "--quiet", "--src-tls-verify=false"]);
        if let Some(creds) = self.creds_arg() {
            copy.arg("--src-creds").arg(creds);
        }
        tools::run(
            copy.arg(self.docker_ref(repo_tag))
                .arg(format!("oci:{}:copy", out.path().display())),
        );
    }

    /// Waits until every request finished before this call is in the access log and
    /// returns a mark after them.
    pub fn mark(&self) -> LogMark {
        LogMark(self.sync_and_read().len())
    }

    /// Requests logged after `mark` (the support's own requests excluded), once every request
    /// finished before this call is logged.
    pub fn requests_since(&self, mark: LogMark) -> Vec<LoggedRequest> {
        let mut all = self.sync_and_read();
        all.drain(..mark.0.min(all.len()));
        all
    }

    /// The number of blob downloads (`GET .../blobs/sha256:...`) since `mark`.
    pub fn blob_gets_since(&self, mark: LogMark) -> usize {
        self.requests_since(mark)
            .iter()
            .filter(|r| r.is_blob_get())
            .count()
    }

    fn sync_and_read(&self) -> Vec<LoggedRequest> {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst);
        let token = format!("ocibench-sync={}-{n}", std::process::id());
        let uri = format!("/v2/?{token}");
        http::request(&self.addr, "GET", &uri, &[("User-Agent", SYNC_AGENT)], b"")
            .unwrap_or_else(|e| panic!("sentinel request to {}: {e}", self.addr));
        let deadline = Instant::now() + Duration::from_secs(10);
        let needle = format!(" {uri} ");
        loop {
            let text = std::fs::read_to_string(self.dir.path().join("access.log"))
                .expect("read access.log");
            // Only complete lines; the sentinel's line proves earlier ones are written.
            let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            if complete.lines().any(|l| l.contains(&needle)) {
                return complete
                    .lines()
                    .filter_map(LoggedRequest::parse)
                    .filter(|r| !r.user_agent.starts_with(http::USER_AGENT))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "sentinel {uri} never reached the access log:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let logs = self.logs();
            let tail: Vec<&str> = logs.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "registry {} (last log lines):\n{}",
                self.addr,
                tail.join("\n")
            );
        }
    }
}
