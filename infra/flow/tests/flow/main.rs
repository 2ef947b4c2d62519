//! Integration tests of shardline-flow, one module per area.

mod intrinsics;
mod paths;
mod schedule;
mod seed_pipeline;
mod states;
mod validation;
