//! The human output of `run`: the bench report, then the image and the container's
//! measurements, pinned by an inline snapshot (what it hides:
//! [`crate::support::snapshot::load_settings`]).

use insta::assert_snapshot;

use crate::support::podman::busybox_image_lock;
use crate::support::snapshot::load_settings;
use crate::support::{TestContext, Variant, fixture_layout, require};

#[test]
fn run_prints_the_bench_report_then_the_container_measurements() {
    require("podman", "podman");
    require("runc", "runc");
    let _store = busybox_image_lock();
    let ctx = TestContext::new();
    let layout = fixture_layout(Variant::Oci);
    let out = ctx
        .run([
            "run",
            &layout.oci_ref(),
            "--port",
            "8080",
            "-n",
            "40",
            "-c",
            "2",
        ])
        .success();
    // The response bytes are busybox httpd's headers and page: they follow the installed
    // busybox-static, as the image's size does.
    let mut settings = load_settings();
    settings.add_filter(r"(?m)^(Total transferred:\s+)\d+ bytes", "${1}[N] bytes");
    settings.bind(|| {
        assert_snapshot!(out.stdout, @"
        Server Hostname:        127.0.0.1
        Server Port:            [PORT]

        Document Path:          /
        Protocol:               HTTP/1.1
        Keep-Alive:             yes

        Concurrency Level:      2
        Time taken for tests:   [SECONDS] seconds
        Complete requests:      40
        Failed requests:        0
        Successful (2xx):       40
        Total transferred:      [N] bytes
        Requests per second:    [RATE] [#/sec] (mean)
        Time per request:       [MS] [ms] (mean)
        Time per request:       [MS] [ms] (mean, across all concurrent requests)
        Transfer rate:          [KIB/S] [Kbytes/sec] received

        Status codes:
          200: 40

        Latency (ms):   min    mean[+/-sd]      max
          [MIN] [MEAN] [SD] [MAX]

        Percentage of the requests served within a certain time (ms)
            50% [MS]
            66% [MS]
            75% [MS]
            80% [MS]
            90% [MS]
            95% [MS]
            98% [MS]
            99% [MS]
          99.9% [MS]
           100% [MS] (longest request)

        Response time histogram (ms):
          [MS] [N] |[BAR]
          [MS] [N] |[BAR]
          [MS] [N] |[BAR]
          [MS] [N] |[BAR]
          [MS] [N] |[BAR]
          [MS] [N] |[BAR]
          [MS] [N] |[BAR]
          [MS] [N] |[BAR]
          [MS] [N] |[BAR]
          [MS] [N] |[BAR]

        Connect (ms):   min     mean      max      p99   ([N] connections)
          [MIN] [MEAN] [MAX] [P99]

        Image:                  oci:[FIXTURES]/busybox:fixture
        Image size:             [SIZE] compressed, [SIZE] uncompressed
        Network:                published port (root, cni)
        Storage driver:         overlay
        Start-up time:          [MS] ms (podman run to the first 2xx of /)
        Peak memory:            [SIZE] ([N] bytes, podman stats)
        Container CPU:          [PCT]% mean, [PCT]% peak (100% = one core)
        ")
    });
}
