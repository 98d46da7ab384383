//! Podman for tests: runc as the runtime (crun fails on these machines, see
//! ENVIRONMENT.md), ulimits within the host's hard limits, and guards that remove
//! test containers and images however a test ends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use super::tools::{command, free_port, require, run, run_stdout};

/// Ulimit arguments every `podman run` in tests needs here.
pub const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// A unique name for podman objects made by a test.
pub fn unique_name(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "ocibench-test-{what}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `podman --runtime runc` (crun fails on these machines, see ENVIRONMENT.md).
pub fn podman() -> Command {
    require("runc", "runc");
    let mut c = command("podman", "podman");
    c.args(["--runtime", "runc"]);
    c
}

/// Names of every container ocibench started (label `ocibench=1`), in any state.
pub fn ocibench_containers() -> Vec<String> {
    run_stdout(command("podman", "podman").args([
        "ps",
        "-a",
        "--filter",
        "label=ocibench=1",
        "--format",
        "{{.Names}}",
    ]))
    .lines()
    .map(str::to_string)
    .collect()
}

/// Removes the test image however the test ends.
pub struct LoadedImage(pub String);

impl Drop for LoadedImage {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
    }
}

/// Removes the test container however the test ends.
pub struct Container(pub String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["--runtime", "runc", "rm", "-f", "-t", "0", &self.0])
            .output();
    }
}

/// GET / until the server answers (or 30 s pass); returns the whole response.
pub fn http_get(port: u16, container: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(r) if r.starts_with("HTTP/") => return r,
            _ if Instant::now() > deadline => {
                let logs = Command::new("podman").args(["logs", container]).output();
                panic!(
                    "no HTTP answer on port {port} after 30 s; result {attempt:?}; logs: {logs:?}"
                );
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Starts `image` detached with its port 8080 published on a free loopback port,
/// and GETs `/` once it answers. The container is removed when the guard drops.
pub fn serve_and_get(image: &str, what: &str) -> (Container, String) {
    let port = free_port();
    let name = unique_name(what);
    let guard = Container(name.clone());
    run(podman()
        .args(["run", "-d", "--name", &name])
        .args(ULIMITS)
        .args(["-p", &format!("127.0.0.1:{port}:8080"), image]));
    let response = http_get(port, &name);
    (guard, response)
}
