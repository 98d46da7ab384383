//! One module per parser family; each `run` is a fuzz target (see the crate root).

pub mod archive;
pub mod compare_config;
pub mod credentials;
pub mod inflate;
pub mod manifest;
pub mod reference;
pub mod registries_conf;
pub mod retry_after;
pub mod www_authenticate;
