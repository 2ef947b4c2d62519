//! Conformance suites: one async function per port, run once per backend.
