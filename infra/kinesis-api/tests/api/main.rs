//! Integration tests of the Kinesis endpoint, one module per area.

mod efo;
mod protocol;
mod robustness;
mod sdk;
mod support;
