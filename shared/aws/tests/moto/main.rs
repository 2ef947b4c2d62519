//! The AWS adapters against moto's server, on the wire.
//!
//! Built only with the `moto-tests` feature, which scripts/test-all.sh turns on after starting
//! moto (`moto_server` from the test venv, on 127.0.0.1 and a free port) and exporting its URL
//! as `SHARDLINE_MOTO_URL`. With the feature on and no URL, every test fails saying how to run
//! them. By hand:
//!
//! ```sh
//! .venv/bin/moto_server -H 127.0.0.1 -p 5000 &
//! SHARDLINE_MOTO_URL=http://127.0.0.1:5000 cargo test -p shardline-aws --features moto-tests
//! ```
//!
//! moto's Kinesis drops acknowledged records when several writers put to one stream at once,
//! so every test that writes to Kinesis holds [`common::kinesis_writer`] and writes from one
//! task at a time.
#![cfg(feature = "moto-tests")]
#![allow(clippy::unwrap_used, missing_docs)]

mod common;
mod conformance;
mod errors;
mod fault_layer;
mod faults;
mod kinesis;
mod stores;
