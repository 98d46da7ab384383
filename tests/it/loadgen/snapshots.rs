//! The human output of `bench` (ab's layout and more), pinned by inline snapshots;
//! timings and rates are hidden ([`crate::support::snapshot::load_settings`]), the
//! counts are exact.

use insta::assert_snapshot;

use crate::support::TestContext;
use crate::support::hyper_server::{HttpServer, Reply, closed_port_url};
use crate::support::snapshot::load_settings;

#[test]
fn bench_prints_the_ab_report_with_status_codes() {
    let server = HttpServer::start(|n| Reply::Status(if n % 4 == 3 { 503 } else { 200 }));
    let out = TestContext::new()
        .run(["bench", &server.url("/snap?x=1"), "-n", "40", "-c", "4"])
        .success();
    load_settings().bind(|| {
        assert_snapshot!(out.stdout, @"
    Server Hostname:        127.0.0.1
    Server Port:            [PORT]

    Document Path:          /snap?x=1
    Keep-Alive:             yes

    Concurrency Level:      4
    Time taken for tests:   [SECONDS] seconds
    Complete requests:      40
    Failed requests:        0
    Successful (2xx):       30
    Non-2xx responses:      10
    Total transferred:      3250 bytes
    Requests per second:    [RATE] [#/sec] (mean)
    Time per request:       [MS] [ms] (mean)
    Time per request:       [MS] [ms] (mean, across all concurrent requests)
    Transfer rate:          [KIB/S] [Kbytes/sec] received

    Status codes:
      200: 30
      503: 10

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
    ")
    });
}

#[test]
fn bench_with_every_connection_refused_prints_the_report_then_the_error() {
    let out = TestContext::new()
        .run(["bench", &closed_port_url(), "-n", "5", "-c", "2"])
        .failure(1);
    load_settings().bind(|| {
        assert_snapshot!(out.stdout, @"
        Server Hostname:        127.0.0.1
        Server Port:            [PORT]

        Document Path:          /
        Keep-Alive:             yes

        Concurrency Level:      2
        Time taken for tests:   [SECONDS] seconds
        Complete requests:      0
        Failed requests:        5
           (Connect: 5, Reset: 0, Timeout: 0, Other: 0)
        Successful (2xx):       0
        Total transferred:      0 bytes
        Requests per second:    [RATE] [#/sec] (mean)
        Time per request:       no responses
        Transfer rate:          [KIB/S] [Kbytes/sec] received

        Latency (ms):           no responses
        ");
        assert_snapshot!(out.stderr, @"
        error: every connection was refused: nothing was measured (5 failed: 5 connect, 0 reset, 0 timeout, 0 other)
        hint: is a server listening at http://127.0.0.1:[PORT]/?
        ");
    });
}
