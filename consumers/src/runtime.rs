//! The consumer runtime (see the crate docs).
