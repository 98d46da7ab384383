//! The host's image of a two-platform build, as podman pulls it from the index a
//! registry serves: podman chooses this machine's platform (linux/amd64 here), and
//! the container serves the application layer's page.

use crate::support::podman::{LoadedImage, podman, serve_and_get};
use crate::support::tools::run_stdout;
use crate::support::{Registry, TestContext, Variant, push_fixture};

#[test]
fn podman_pulls_and_runs_the_host_image_of_a_two_platform_build() {
    let registry = Registry::start();
    let base = push_fixture(&registry, "multi/base", "1", Variant::MultiPlatformIndex);
    let ctx = TestContext::new();
    let src = ctx.path("site");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("index.html"), "served from the host's platform\n").unwrap();
    let name = registry.reference("multi/served:1");
    let v = ctx
        .run([
            "build",
            "--json",
            "--from",
            &base.reference,
            "--platform",
            "linux/amd64,linux/arm64",
            "--layer",
            &format!("{}:/srv/www", src.display()),
            "--cmd",
            r#"["/bin/busybox","httpd","-f","-p","8080","-h","/srv/www"]"#,
            "--expose",
            "8080",
            "-o",
            &name,
        ])
        .success()
        .json();
    assert_eq!(v["images"][0]["platform"], "linux/amd64");
    let host_image = v["images"][0]["digest"].as_str().unwrap().to_string();

    let _image = LoadedImage(name.clone());
    run_stdout(podman().args(["pull", "--quiet", "--tls-verify=false", &name]));
    // podman took the amd64 entry of the index: its config is the image podman holds.
    let raw = registry.skopeo_inspect(&format!("multi/served@{host_image}"), &["--raw"]);
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap();
    let said = run_stdout(podman().args([
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.Architecture}} {{.Digest}}",
        &name,
    ]));
    assert_eq!(
        said.trim(),
        format!(
            "{} amd64 {}",
            &config["sha256:".len()..],
            v["index"]["digest"].as_str().unwrap()
        )
    );
    let (_container, response) = serve_and_get(&name, "multi-run");
    assert!(response.contains(" 200 "), "{response}");
    assert!(
        response.ends_with("served from the host's platform\n"),
        "{response}"
    );
}
