//! An edited config, checked by podman: a Docker-style base config (with
//! Healthcheck, Shell, StopSignal that ocibench does not model) is edited, the
//! image exported as a docker-archive and loaded; podman must see every edit,
//! keep the unmodelled fields, and run the new entrypoint + cmd.

use crate::support::podman::{LoadedImage, podman, serve_and_get, unique_name};
use crate::support::store_fixture::{APP_PAGE, busybox_layers};
use crate::support::tools::{run, run_stdout};
use ocibench::oci::image_config::{AddedLayer, ConfigEdit, edit_config};
use ocibench::oci::manifest::{Descriptor, ImageManifest, MediaFamily};
use ocibench::oci::publish::{Destination, ExportImage, export};
use ocibench::oci::store::BlobStore;
use ocibench::progress::NoProgress;
use serde_json::{Value, json};

#[test]
fn podman_sees_the_edited_config_and_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("cache")).unwrap();
    let family = MediaFamily::Docker;
    let [(base, base_diff), (app, app_diff)] = busybox_layers(&store, family);

    // The base, as Docker would have written it, with the busybox layer only.
    let base_config = json!({
        "architecture": "amd64", "os": "linux", "docker_version": "20.10.24",
        "created": "2023-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/bin", "LANG=C"],
            "Cmd": ["/bin/sh"],
            "Healthcheck": {"Test": ["CMD", "/bin/true"], "Interval": 5_000_000_000u64},
            "Shell": ["/bin/sh", "-c"],
            "StopSignal": "SIGINT",
            "Labels": {"base": "busybox"}
        },
        "rootfs": {"type": "layers", "diff_ids": [base_diff.to_string()]},
        "history": [{"created": "2023-01-01T00:00:00Z", "created_by": "ADD rootfs /"}]
    });
    let edit = ConfigEdit {
        entrypoint: Some(vec!["/bin/busybox".into(), "httpd".into()]),
        cmd: Some(
            ["-f", "-p", "8080", "-h", "/www"]
                .map(String::from)
                .to_vec(),
        ),
        env: vec!["LANG=C.UTF-8".into(), "GREETING=hola".into()],
        workdir: Some("/www".into()),
        expose: vec!["8080".into(), "5353/udp".into()],
        labels: vec![("org.opencontainers.image.title".into(), "edited".into())],
        user: Some("0:0".into()),
        created_epoch: 1_700_000_000,
        ..ConfigEdit::default()
    };
    let layer = AddedLayer {
        diff_id: app_diff,
        created_by: "ocibench: COPY www /www".into(),
    };
    let config = edit_config(&serde_json::to_vec(&base_config).unwrap(), &edit, &[layer]).unwrap();
    let config_digest = store.put_bytes(&config).unwrap();
    let manifest = ImageManifest::new(
        family,
        Descriptor::new(family.config(), config_digest.clone(), config.len() as u64),
        vec![base, app],
    );
    let image = ExportImage::new(manifest.to_bytes(), family.manifest()).unwrap();

    let name = format!("localhost/{}:latest", unique_name("config"));
    let file = dir.path().join("edited.tar");
    let dest = Destination::parse(&format!("docker-archive:{}:{name}", file.display())).unwrap();
    export(&store, &image, &dest, &NoProgress).unwrap();
    let _image = LoadedImage(name.clone());
    run(podman().args(["load", "-q", "-i"]).arg(&file));

    let inspected: Value =
        serde_json::from_str(&run_stdout(podman().args(["image", "inspect", &name]))).unwrap();
    let img = &inspected[0];
    assert_eq!(img["Id"], config_digest.hex());
    let c = &img["Config"];
    assert_eq!(c["Entrypoint"], json!(["/bin/busybox", "httpd"]));
    assert_eq!(c["Cmd"], json!(["-f", "-p", "8080", "-h", "/www"]));
    assert_eq!(
        c["Env"],
        json!(["PATH=/bin", "LANG=C.UTF-8", "GREETING=hola"])
    );
    assert_eq!(c["WorkingDir"], "/www");
    assert_eq!(c["User"], "0:0");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["ExposedPorts"], json!({"8080/tcp": {}, "5353/udp": {}}));
    assert_eq!(
        c["Labels"],
        json!({"base": "busybox", "org.opencontainers.image.title": "edited"})
    );
    assert_eq!(img["Created"], "2023-11-14T22:13:20Z");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(img["History"].as_array().unwrap().len(), 2);
    let health = run_stdout(podman().args([
        "image",
        "inspect",
        "--format",
        "{{.HealthCheck.Test}}",
        &name,
    ]));
    assert_eq!(health.trim(), "[CMD /bin/true]");

    let (container, response) = serve_and_get(&name, "config-run");
    assert!(response.ends_with(APP_PAGE), "{response}");
    let env = run_stdout(podman().args([
        "exec",
        &container.0,
        "/bin/busybox",
        "sh",
        "-c",
        "echo $GREETING",
    ]));
    assert_eq!(env.trim(), "hola");
}
