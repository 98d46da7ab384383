//! ocibench: which base image should a service be built on?
//!
//! The library is layered one way: `oci` (images: references, registry client,
//! blob store, layouts, archives, building), `loadgen` (the HTTP load generator)
//! and `runner` (podman) know nothing of each other; `compare` composes them into
//! the experiment; `report` renders finished results. The command line lives in
//! the binary only (`src/app/`), so nothing here can reach the terminal.

pub mod compare;
pub mod loadgen;
pub mod oci;
pub mod progress;
pub mod report;
pub mod runner;
