//! The HTTP load generator behind `ocibench bench` (hyper 1.x on tokio).
//!
//! Knows nothing of `oci` or `runner`: it takes a `LoadConfig` and returns a finished result.
//! It never prints: `run` returns a `BenchResult` (`report::bench` renders it as
//! ab's text), and `Progress` is a counter the caller may poll.
//!
//! ```no_run
//! use ocibench::loadgen::{LoadConfig, Progress, run};
//! let config = LoadConfig::builder("http://127.0.0.1:8080/")
//!     .requests(1000)
//!     .concurrency(100)
//!     .build()?;
//! let result = run(&config, &Progress::new())?;
//! println!("{} req/s, p99 {} ms", result.requests_per_second, result.latency_ms.p99);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules: `config` (validated settings), `transport` (TCP and TLS, the
//! rustls config built once per run), `connection` (one hyper HTTP/1
//! connection, error kinds), `joint_poll` (a connection's futures polled as
//! one), `http2` (a hyper HTTP/2 connection shared by `--streams` clients),
//! `sender` (how a client sends: the trait the loop is generic over),
//! `deadline` (timeouts without a timer per request), `worker` (the
//! per-thread hot loop), `histogram`
//! (HdrHistogram latencies), `result` (tallies and the serde result), `run`
//! (threads, limits, merge, the open-loop schedule's shares), `search` (the
//! highest rate that keeps an SLO).

pub mod config;
pub mod connection;
pub mod deadline;
pub mod histogram;
pub mod http2;
mod joint_poll;
pub mod result;
pub mod run;
pub mod search;
mod sender;
pub mod transport;
pub mod worker;

pub use config::{ConfigError, LoadConfig, LoadConfigBuilder, Stop, TlsTrust};
pub use histogram::{HistogramBucket, LatencyHistogram, LatencyMs};
pub use result::{BenchResult, ErrorCounts, ErrorKind, RateReport};
pub use run::{LoadError, Progress, current_thread_cpus, pin_current_thread, reserve_fds, run};
pub use search::{RateSearch, RateSearchResult, SearchStep, Slo, find_rate};
