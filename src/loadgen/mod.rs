//! The HTTP load generator behind `ocibench bench` (hyper 1.x on tokio).
//!
//! Knows nothing of `oci`: it takes a `LoadConfig` and returns a finished result.
