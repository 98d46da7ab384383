//! A zstd image ocibench built, loaded and run by podman: its storage decodes the
//! zstd layer itself (an oci-archive keeps layers as they are), and the container
//! serves the page from that layer.

use crate::support::podman::{LoadedImage, podman, serve_and_get, unique_name};
use crate::support::tools::run_stdout;
use crate::support::{Output, TestContext, Variant, fixture_layout};

const PAGE: &str = "served from a zstd layer\n";

#[test]
fn podman_runs_a_zstd_image_ocibench_built() {
    let base = fixture_layout(Variant::Oci);
    let ctx = TestContext::new();
    let www = ctx.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), PAGE).unwrap();
    let name = format!("localhost/{}:latest", unique_name("zstd"));
    let archive = ctx.path("image.tar");
    let built = Output::of(&mut ctx.cmd([
        "build",
        "--json",
        "--from",
        &base.oci_ref(),
        "--layer",
        &format!("{}:/www", www.display()),
        "--compression",
        "zstd:19",
        "-o",
        &format!("oci-archive:{}:{name}", archive.display()),
    ]))
    .success()
    .json();
    assert_eq!(
        built["image"]["layers"][1]["media_type"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    let _image = LoadedImage(name.clone());
    let out = run_stdout(podman().args(["load", "-i"]).arg(&archive));
    assert!(out.contains(&name), "podman load said: {out}");
    // podman records the layers by diff_id: the zstd layer's is the one ocibench gave.
    let layers = run_stdout(podman().args([
        "image",
        "inspect",
        "--format",
        "{{range .RootFS.Layers}}{{.}} {{end}}",
        &name,
    ]));
    assert!(
        layers.contains(built["image"]["layers"][1]["diff_id"].as_str().unwrap()),
        "podman's layers: {layers}"
    );
    let (_container, response) = serve_and_get(&name, "zstd");
    assert!(response.starts_with("HTTP/1."), "{response}");
    assert!(response.contains(" 200 "), "{response}");
    assert!(response.ends_with(PAGE), "{response}");
}
