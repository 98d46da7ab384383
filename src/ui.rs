//! Terminal progress bars (indicatif), the binary's implementation of `Reporter`.
