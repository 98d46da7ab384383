//! The archives `export` writes, loaded and run by podman (with runc, as
//! ENVIRONMENT.md requires): the container serves the app layer's page, which
//! proves layer order, config (Cmd) and the archive format all made it through.

use crate::support::podman::{LoadedImage, podman, serve_and_get, unique_name};
use crate::support::store_fixture::{APP_PAGE, Fixture};
use crate::support::tools::run_stdout;
use ocibench::oci::manifest::MediaFamily;

/// Loads `archive`, checks podman named it `name`, runs it and fetches the page.
fn load_and_serve(archive: &std::path::Path, name: &str, image_id: &str) {
    let _image = LoadedImage(name.to_string());
    let out = run_stdout(podman().args(["load", "-i"]).arg(archive));
    assert!(out.contains(name), "podman load said: {out}");
    let id = run_stdout(podman().args(["image", "inspect", "--format", "{{.Id}}", name]));
    assert_eq!(
        id.trim(),
        image_id,
        "podman's image ID is the config digest"
    );

    let (_container, response) = serve_and_get(name, "run");
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
    let report = fx
        .export_to(&format!("oci-archive:{}:{name}", file.display()))
        .unwrap();
    load_and_serve(&file, &name, report.image_id.hex());
}

#[test]
fn podman_loads_and_runs_the_docker_archive() {
    let fx = Fixture::new(MediaFamily::Oci);
    let name = format!("localhost/{}:latest", unique_name("docker"));
    let file = fx.path("image.tar");
    let report = fx
        .export_to(&format!("docker-archive:{}:{name}", file.display()))
        .unwrap();
    load_and_serve(&file, &name, report.image_id.hex());
}

#[test]
fn podman_loads_a_docker_family_image_from_both_archives() {
    let fx = Fixture::new(MediaFamily::Docker);
    for transport in ["oci-archive", "docker-archive"] {
        let name = format!("localhost/{}:latest", unique_name("dfam"));
        let file = fx.path(&format!("{transport}.tar"));
        let report = fx
            .export_to(&format!("{transport}:{}:{name}", file.display()))
            .unwrap();
        let _image = LoadedImage(name.clone());
        let out = run_stdout(podman().args(["load", "-i"]).arg(&file));
        assert!(out.contains(&name), "{transport}: podman load said: {out}");
        let id = run_stdout(podman().args(["image", "inspect", "--format", "{{.Id}}", &name]));
        assert_eq!(id.trim(), report.image_id.hex(), "{transport}");
    }
}
