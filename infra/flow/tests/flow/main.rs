//! Integration tests of shardline-flow, one module per area.

mod fidelity;
mod intrinsics;
mod jsonata;
mod paths;
mod schedule;
mod seed_pipeline;
mod states;
mod table;
mod validation;
mod variables;
