//! Support code for the integration tests in `tests/tests/`.
