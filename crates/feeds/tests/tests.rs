//! Integration tests of the `feeds` crate: one module per concern.
