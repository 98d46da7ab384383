//! One module per subcommand: each turns its arguments into settings, makes one
//! library call and renders the result (human text on stdout, or one JSON
//! document with `--json`). No subcommand imports another: what several share
//! lives in `app::args`, `app::globals` or `app::terminal`.

pub mod bench;
pub mod build;
pub mod cache;
pub mod compare;
pub mod completions;
pub mod copy;
pub mod inspect;
pub mod man;
pub mod pull;
pub mod push;
pub mod run;
pub mod size;
