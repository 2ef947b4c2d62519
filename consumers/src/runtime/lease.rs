//! KCL-style shard leases: several `shardline consume` processes on one stream share its
//! shards, each shard read by one worker at a time.
//!
//! A [`LeaseWorker`] runs one consumer for the shards whose lease it holds, through the
//! [`LeaseStore`](shardline_core::lease::LeaseStore) port (DynamoDB in the KCL lease schema
//! on AWS, redb embedded). Each worker:
//! - creates a lease for every shard without one (starting from the consumer's checkpoint if
//!   it has one, so `up`'s progress carries over), with the shard's parents;
//! - announces itself with a heartbeat ([`registry`]) and takes its fair share
//!   `ceil(available leases / live workers)`: free leases first, then expired ones (their
//!   counter did not move for `failover_time` as this worker watched it);
//! - lets go of leases above its share after a final checkpoint, so a worker that joins gets
//!   its share without anyone taking a lease that is still being written for ([`plan`]);
//! - renews its leases every `renew_interval`; a renewal that finds the lease taken marks it
//!   lost, and a worker that could not renew for `failover_time - renew_interval` gives up
//!   every lease, so it stops writing before another worker may see them expire;
//! - starts a child shard only after its parents' leases are at `SHARD_END` (which it writes,
//!   with the children, once its consumer finished a closed shard);
//! - on shutdown stops its consumer (final flush and checkpoints) and then releases its leases.
//!
//! # Guarantees
//! - Every lease change is a conditional write on the lease counter: at any time one worker
//!   owns a lease, and a take, renewal, checkpoint or release made with a stale counter fails.
//! - A consumer checkpoints only shards whose lease its worker holds ([`LeasedCheckpoints`]),
//!   and stops at once ([`ConsumerError::LeaseLost`](super::ConsumerError::LeaseLost)) when a
//!   shard it reads is lost, so it writes nothing more for it; buffered effects of the other
//!   shards are not flushed then, and are written again after the restart (at-least-once,
//!   idempotent sinks).
//! - Sinks that keep one writer per shard fence themselves as well: the S3 Parquet sink's
//!   manifest is written with conditional puts, so a worker that lost a shard cannot commit
//!   there even before it notices (see `sinks::s3_parquet`).
//! - Effects already under way when a lease is lost (one CloudWatch put, one DynamoDB batch)
//!   may still land: DynamoDB items are idempotent; CloudWatch statistic sets of such a
//!   batch can be counted twice (CloudWatch itself has no conditional write).
//!
//! # Layout
//! - [`config`] — [`LeaseConfig`].
//! - [`set`] — [`LeaseSet`]: owned and lost shards, shared with the consumer.
//! - [`plan`] — expiry ([`plan::Observer`]) and the fair share ([`plan::plan`]).
//! - [`held`] — [`HeldLeases`] (this worker's lease writes) and [`LeasedCheckpoints`].
//! - [`registry`] — worker heartbeats in the state store.
//! - [`worker`] — [`LeaseWorker`], its ownership events ([`LeaseEvent`]) and report.

pub mod config;
pub mod held;
pub mod plan;
pub mod registry;
pub mod set;
pub mod worker;

pub use config::LeaseConfig;
pub use held::{HeldLeases, LeasedCheckpoints};
pub use set::LeaseSet;
pub use worker::{
    LeaseBackends, LeaseEvent, LeaseEventKind, LeaseWorker, LeasedFactory, WorkerReport, worker_id,
};
