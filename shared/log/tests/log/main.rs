//! Integration tests of the embedded log, one module per area.

mod basic;
mod common;
mod corruption;
mod crash;
mod descriptors;
mod group_commit;
mod iterators;
mod leftovers;
mod limits;
mod power_loss;
mod properties;
mod reshard;
mod retention;
mod rlimits;
