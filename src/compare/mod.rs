//! `ocibench compare`: the whole experiment. Builds the application on every
//! candidate base, then, round after round in rotating order, runs each in a fresh
//! podman container and loads it; the measurements go to `report` for analysis.

pub mod config;
