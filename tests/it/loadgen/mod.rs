//! The hyper load generator, as a library and as `ocibench bench`, against in-test
//! HTTP servers on loopback (no system packages needed): plain HTTP/1.1, and HTTPS
//! and HTTP/2 with a CA made in the test.

mod bench_cli;
mod bench_lib;
mod http2;
mod https;
mod rate;
mod snapshots;
