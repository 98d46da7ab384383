//! Parallel, deterministic gzip compression.
