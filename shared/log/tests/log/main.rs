//! Integration tests of the embedded log, one module per area.

mod basic;
mod common;
mod corruption;
mod crash;
mod group_commit;
mod iterators;
mod limits;
mod properties;
mod reshard;
mod retention;
