//! `ocibench compare`: the whole experiment of DESIGN.md's "Origin", done properly.
//!
//! Builds the application on every candidate base, loads each image into podman,
//! then, round after round in rotating order, runs each in a fresh container and
//! loads it; the measurements go to `report` for analysis. This is the one
//! module that composes the others: `oci` builds, `runner` runs containers,
//! `loadgen` loads them, `report` analyses; `oci`, `runner` and `loadgen` know
//! none of the others.
//!
//! - `config`: `ocibench.toml`, validated;
//! - `schedule`: the rotating order of the rounds;
//! - `trial`: one container, start to removal, with one measured load;
//! - `experiment`: build all, load all, the rounds, the measurements, behind a
//!   `Lab` trait, so the loop is tested without podman;
//! - `image`: a stored image into podman (`run` and `lab` share it);
//! - `lab`: the real `Lab`: images built into the cache and loaded into podman.

pub mod config;
pub mod experiment;
pub mod image;
pub mod lab;
pub mod schedule;
pub mod trial;

pub use schedule::schedule;
