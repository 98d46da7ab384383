//! The archives `export` writes, loaded and run by podman (with runc, as
//! ENVIRONMENT.md requires): the container serves the app layer's page, which
//! proves layer order, config (Cmd) and the archive format all made it through.

mod export_fixture;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use export_fixture::{APP_PAGE, Fixture, require, run, stdout, unique_name};
use ocibench::oci::export::{Destination, export};
use ocibench::oci::manifest::MediaFamily;
use ocibench::progress::NoProgress;

fn podman() -> Command {
    require("podman", "podman");
    require("runc", "runc");
    let mut c = Command::new("podman");
    c.args(["--runtime", "runc"]);
    c
}

/// Removes the test image however the test ends.
struct LoadedImage(String);

impl Drop for LoadedImage {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
    }
}

/// Removes the test container however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["--runtime", "runc", "rm", "-f", "-t", "0", &self.0])
            .output();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / until the server answers (or 30 s pass); returns the whole response.
fn http_get(port: u16, container: &str) -> String {
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

/// Loads `archive`, checks podman named it `name`, runs it and fetches the page.
fn load_and_serve(archive: &std::path::Path, name: &str, image_id: &str) {
    let _image = LoadedImage(name.to_string());
    let out = stdout(podman().args(["load", "-i"]).arg(archive));
    assert!(out.contains(name), "podman load said: {out}");
    let id = stdout(podman().args(["image", "inspect", "--format", "{{.Id}}", name]));
    assert_eq!(
        id.trim(),
        image_id,
        "podman's image ID is the config digest"
    );

    let port = free_port();
    let cname = unique_name("run");
    let _container = Container(cname.clone());
    run(podman().args([
        "run",
        "-d",
        "--rm",
        "--name",
        &cname,
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "-p",
        &format!("127.0.0.1:{port}:8080"),
        name,
    ]));
    let response = http_get(port, &cname);
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    assert!(response.ends_with(APP_PAGE), "{response}");
}

#[test]
fn podman_loads_and_runs_the_oci_archive() {
    let fx = Fixture::new(MediaFamily::Oci);
    let name = format!("localhost/{}:latest", unique_name("oci"));
    let file = fx.path("image.tar");
    let dest = Destination::parse(&format!("oci-archive:{}:{name}", file.display())).unwrap();
    let report = export(&fx.store, &fx.image, &dest, &NoProgress).unwrap();
    load_and_serve(&file, &name, report.image_id.hex());
}

#[test]
fn podman_loads_and_runs_the_docker_archive() {
    let fx = Fixture::new(MediaFamily::Oci);
    let name = format!("localhost/{}:latest", unique_name("docker"));
    let file = fx.path("image.tar");
    let dest = Destination::parse(&format!("docker-archive:{}:{name}", file.display())).unwrap();
    let report = export(&fx.store, &fx.image, &dest, &NoProgress).unwrap();
    load_and_serve(&file, &name, report.image_id.hex());
}

#[test]
fn podman_loads_a_docker_family_image_from_both_archives() {
    let fx = Fixture::new(MediaFamily::Docker);
    for transport in ["oci-archive", "docker-archive"] {
        let name = format!("localhost/{}:latest", unique_name("dfam"));
        let file = fx.path(&format!("{transport}.tar"));
        let dest = Destination::parse(&format!("{transport}:{}:{name}", file.display())).unwrap();
        let report = export(&fx.store, &fx.image, &dest, &NoProgress).unwrap();
        let _image = LoadedImage(name.clone());
        let out = stdout(podman().args(["load", "-i"]).arg(&file));
        assert!(out.contains(&name), "{transport}: podman load said: {out}");
        let id = stdout(podman().args(["image", "inspect", "--format", "{{.Id}}", &name]));
        assert_eq!(id.trim(), report.image_id.hex(), "{transport}");
    }
}
