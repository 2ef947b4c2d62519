//! The alerts sink: CloudWatch-style threshold alarms per (instance, metric), notified on SNS.
//!
//! Each rule of [`AlertsConfig`] (the seed's thresholds by default) becomes one alarm per
//! instance reporting its metric. Samples fill fixed periods; closed periods are evaluated as
//! CloudWatch does (statistic, M of N, treat-missing-data; see [`alarm`]).
//!
//! # When a period closes
//! Event time drives evaluation. Each shard keeps an event-time watermark: the largest event
//! time among its records. A period `[s, e)` of an alarm read from that shard is evaluated once
//! the watermark reaches `e + grace`. Periods in which the instance sent nothing are evaluated
//! as missing when the shard's watermark passes them. A sample for an already evaluated period
//! is late and is dropped ([`AlertsSink::late_samples`] counts them). At shutdown,
//! `flush(now, force = true)` evaluates the periods holding samples whose end has passed by the
//! wall clock `now`, for the alarms of the shards this sink has read (other workers' shards are
//! theirs to evaluate).
//!
//! # Notifications
//! Only a transition into ALARM, or from ALARM to OK, is notified; INSUFFICIENT_DATA → OK and
//! ALARM → INSUFFICIENT_DATA are not, and nothing repeats while the state stays. Each
//! notification carries a deterministic deduplication id (see [`message`]).
//!
//! # Invariants (exactly-once notification)
//! - State lives in the state-store namespace `alarms.<consumer>`: `alarm/<instance>/<name>`
//!   (an [`alarm::AlarmRecord`] as JSON: state, since, last value, open periods, evaluation
//!   range) and `watermark/<stream>/<shard>` ([`ShardProgress`]: last sequence number applied
//!   and event-time watermark).
//! - Batches are applied in memory, in order; a transition's notification is published as
//!   soon as the batch that caused it is applied. The changed alarms and the shards' watermarks
//!   are written in one atomic `put_many` when the buffer is due ([`crate::sinks::buffer`]: by
//!   default 100,000 records or 1 s, and whenever notifications went out), always after the
//!   notifications they imply. Only then does a shard's durable mark move, so the runtime's
//!   checkpoint never passes unwritten state.
//! - Records at or below a shard's watermark are skipped, so a replay of an applied range
//!   changes nothing and notifies nothing. A crash before the write replays the records after
//!   the checkpoint and re-evaluates the same periods, producing the same deduplication ids,
//!   which the notifier drops.
//! - A failed publish or write leaves the applied state in memory and the rest queued; the
//!   next write or flush retries it.
//!
//! # Layout
//! - [`config`] — [`AlertsConfig`], [`AlarmRule`] and CloudWatch's enums.
//! - [`alarm`] — [`AlarmRecord`], [`AlarmState`], period evaluation.
//! - [`message`] — subject, message and deduplication id of a transition.
//! - [`status`] — [`AlarmStatus`] and [`read_alarm_states`] for status lines and `alarms list`.
//! - [`sink`] — [`AlertsSink`].

pub mod alarm;
pub mod config;
pub mod message;
pub mod sink;
pub mod status;

pub use alarm::{AlarmRecord, AlarmState};
pub use config::{AlarmRule, AlertsConfig, ComparisonOperator, Statistic, TreatMissingData};
pub use sink::{AlertsSink, ShardProgress};
pub use status::{AlarmStatus, read_alarm_states};
