//! Arrow columns of a Parquet object, built directly from borrowed events in input order.
//!
//! Invariants: the columns follow `metric_schema()` in order and type; every string is copied
//! once, from the event's `&str` into the column's value buffer (no per-row `String`); shard
//! names are formatted once per run of rows from the same shard; the column buffers are sized
//! from one sequential pass over the rows, so they are never regrown. Rows are read in the
//! order they arrived (which is close to the order their events were allocated in); the sort
//! is applied afterwards to the compact columns (`writer::metric_batch`), which costs less
//! than gathering each row's strings from events scattered over the heap.

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use shardline_core::ShardId;
use std::sync::Arc;

use crate::SinkRecord;

/// Value bytes of the variable-length string columns, for sizing their buffers.
#[derive(Default)]
struct Sizes {
    metric_id: usize,
    instance_id: usize,
    region: usize,
    collected_at: usize,
    sequence_number: usize,
}

impl Sizes {
    fn of(rows: &[&SinkRecord]) -> Self {
        let mut s = Sizes::default();
        for r in rows {
            s.metric_id += r.event.metric_id.len();
            s.instance_id += r.event.instance_id.len();
            s.region += r.event.region.len();
            s.collected_at += r.event.collected_at.len();
            s.sequence_number += r.sequence_number.as_str().len();
        }
        s
    }
}

/// The twelve columns of `rows`, in input order.
pub(super) fn build(rows: &[&SinkRecord]) -> Vec<ArrayRef> {
    let n = rows.len();
    let sizes = Sizes::of(rows);
    let mut metric_id = StringBuilder::with_capacity(n, sizes.metric_id);
    let mut metric_type = StringBuilder::with_capacity(n, n * 16);
    let mut timestamp = Int64Builder::with_capacity(n);
    let mut value = Float64Builder::with_capacity(n);
    let mut instance_id = StringBuilder::with_capacity(n, sizes.instance_id);
    let mut region = StringBuilder::with_capacity(n, sizes.region);
    let mut collected_at = StringBuilder::with_capacity(n, sizes.collected_at);
    let mut event_time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut unit = StringBuilder::with_capacity(n, n * 16);
    let mut shard_id = StringBuilder::with_capacity(n, n * 20);
    let mut sequence_number = StringBuilder::with_capacity(n, sizes.sequence_number);
    let mut arrival_time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");

    let mut shard_name: Option<(ShardId, String)> = None;
    let mut push = |r: &SinkRecord| {
        let e = &r.event;
        metric_id.append_value(&e.metric_id);
        metric_type.append_value(e.metric_type.as_str());
        timestamp.append_value(e.timestamp);
        value.append_value(e.value);
        instance_id.append_value(&e.instance_id);
        region.append_value(&e.region);
        collected_at.append_value(&e.collected_at);
        event_time.append_value(e.event_time_ms());
        unit.append_value(e.unit().as_str());
        if shard_name.as_ref().is_none_or(|(s, _)| *s != r.shard) {
            shard_name = Some((r.shard, r.shard.to_string()));
        }
        if let Some((_, name)) = &shard_name {
            shard_id.append_value(name);
        }
        sequence_number.append_value(r.sequence_number.as_str());
        arrival_time.append_value(r.arrival_ms);
    };
    rows.iter().for_each(|r| push(r));
    vec![
        Arc::new(metric_id.finish()),
        Arc::new(metric_type.finish()),
        Arc::new(timestamp.finish()),
        Arc::new(value.finish()),
        Arc::new(instance_id.finish()),
        Arc::new(region.finish()),
        Arc::new(collected_at.finish()),
        Arc::new(event_time.finish()),
        Arc::new(unit.finish()),
        Arc::new(shard_id.finish()),
        Arc::new(sequence_number.finish()),
        Arc::new(arrival_time.finish()),
    ]
}
