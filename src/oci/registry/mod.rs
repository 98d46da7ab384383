//! The registry API v2 (OCI distribution): the client's calls, authentication and
//! where credentials come from.

pub mod auth;
mod client;
pub mod credentials;

pub use client::*;
