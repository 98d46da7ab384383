//! Compression: inflating layers (ISA-L) and compressing them in parallel (pgzip).

pub mod inflate;
pub mod pgzip;
