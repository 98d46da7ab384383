//! Compression: inflating layers (ISA-L), measuring them (diff_id and length in
//! one pass) and compressing them in parallel (pgzip).

pub mod inflate;
pub mod measure;
pub mod pgzip;
