//! The hyper load generator, as a library and as `ocibench bench`, against in-test
//! HTTP servers on loopback (no system packages needed).

mod bench_cli;
mod bench_lib;
mod rate;
mod snapshots;
