//! Integration tests of shardline-flow, one module per area.

mod intrinsics;
mod paths;
mod seed_pipeline;
mod states;
mod validation;
