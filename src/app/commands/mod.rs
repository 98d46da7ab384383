//! One module per subcommand: each turns its arguments into library calls and
//! prints the result (human text on stdout, or one JSON document with `--json`).

pub mod bench;
pub mod build;
pub mod build_args;
pub mod compare;
pub mod pull;
pub mod push;
pub mod run;
