//! ocibench: which base image should a service be built on?
//!
//! The library is layered one way: `oci` (references, registry client, blob
//! store, layers, images) and `loadgen` (the HTTP load generator) know nothing
//! of each other nor of the command line; `cmd` composes them for the binary.

pub mod cli;
pub mod cmd;
pub mod compare;
pub mod error;
pub mod loadgen;
pub mod oci;
pub mod progress;
pub mod report;
pub mod runner;
pub mod ui;
