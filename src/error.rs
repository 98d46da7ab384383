//! Errors that carry what a user needs: a message, a hint, and whether the
//! fault is the input (exit 2) or the run (exit 1).
//!
//! Library modules keep their own specific error types (with `#[source]`); the
//! command layer wraps what it wants to explain in a `UserError`, and library
//! error types that know a hint implement `Explain`, which `main` consults.

use std::fmt;

/// Which exit status an error deserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Something failed while running: network, registry, podman (exit 1).
    Runtime,
    /// The user's input is wrong: a bad flag value, a missing file (exit 2).
    Usage,
}

impl ExitKind {
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Runtime => 1,
            ExitKind::Usage => 2,
        }
    }
}

/// Implemented by error types that know how to explain themselves.
pub trait Explain {
    fn hint(&self) -> Option<String> {
        None
    }
    fn exit_kind(&self) -> ExitKind {
        ExitKind::Runtime
    }
}

/// An error with a message meant for the user, an optional hint and an exit kind.
#[derive(Debug)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
    pub kind: ExitKind,
}

impl UserError {
    /// Bad input: exit status 2.
    pub fn usage(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
            kind: ExitKind::Usage,
        }
    }
    /// Failure while running: exit status 1.
    pub fn runtime(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
            kind: ExitKind::Runtime,
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

impl Explain for UserError {
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
    fn exit_kind(&self) -> ExitKind {
        self.kind
    }
}
