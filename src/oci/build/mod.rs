//! Building images: layers from directories and files, Nix closures as layers.

pub mod layer;
pub mod layer_tar;
pub mod layer_walk;
pub mod nix;
