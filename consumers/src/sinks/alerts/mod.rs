//! The alerts sink.
