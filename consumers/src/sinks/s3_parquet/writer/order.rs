//! The row order of a Parquet object.
//!
//! Invariant: rows are ordered by (`instance_id`, `timestamp`, event time, input position), so
//! rows with equal keys keep the order given (sequence order). The permutation is computed on
//! integer keys: each instance id's rank among the distinct ids (one hash lookup per row, or
//! none when a row repeats the previous row's id), a stable counting sort on that rank, then a
//! stable sort on (timestamp, event time) only inside the instances whose rows are not already
//! in time order, which for stream input (sequence order is arrival order) is rare.

use std::collections::HashMap;

use shardline_core::Error;

use crate::SinkRecord;

/// The permutation that orders `rows` as in the module docs, or `None` when they already are.
///
/// # Errors
/// [`Error::InvalidArgument`] for more than `u32::MAX` rows (one object never holds that many;
/// flush more often).
pub(super) fn sort_permutation(rows: &[&SinkRecord]) -> Result<Option<Vec<u32>>, Error> {
    let n = rows.len();
    if u32::try_from(n).is_err() {
        return Err(Error::InvalidArgument(format!(
            "parquet encoding: {n} rows in one object exceed {}; flush more often \
             (lower the S3 sink's batch limits)",
            u32::MAX
        )));
    }
    // Provisional ids in first-seen order, one per row.
    let mut seen: HashMap<&str, u32> = HashMap::new();
    let mut distinct: Vec<&str> = Vec::new();
    let mut row_id: Vec<u32> = Vec::with_capacity(n);
    let mut last: Option<(&str, u32)> = None;
    for r in rows {
        let id = r.event.instance_id.as_str();
        let provisional = match last {
            Some((prev, p)) if prev == id => p,
            _ => *seen.entry(id).or_insert_with(|| {
                distinct.push(id);
                (distinct.len() - 1) as u32
            }),
        };
        last = Some((id, provisional));
        row_id.push(provisional);
    }
    // Rank of each provisional id among the sorted distinct ids.
    let mut by_name: Vec<u32> = (0..distinct.len() as u32).collect();
    by_name.sort_unstable_by_key(|&p| distinct[p as usize]);
    let mut rank = vec![0u32; distinct.len()];
    for (r, &p) in by_name.iter().enumerate() {
        rank[p as usize] = r as u32;
    }
    // Stable counting sort on the rank.
    let mut start = vec![0usize; distinct.len() + 1];
    for &p in &row_id {
        start[rank[p as usize] as usize + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let mut next = start.clone();
    let mut perm = vec![0u32; n];
    for (i, &p) in row_id.iter().enumerate() {
        let slot = &mut next[rank[p as usize] as usize];
        perm[*slot] = i as u32;
        *slot += 1;
    }
    // Inside each instance, time order; input order breaks ties (the sort is stable).
    let key = |i: u32| {
        let e = &rows[i as usize].event;
        (e.timestamp, e.event_time_ms())
    };
    for w in start.windows(2) {
        let group = &mut perm[w[0]..w[1]];
        if group.windows(2).any(|p| key(p[0]) > key(p[1])) {
            group.sort_by_key(|&i| key(i));
        }
    }
    if perm.iter().enumerate().all(|(k, &i)| k == i as usize) {
        return Ok(None);
    }
    Ok(Some(perm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::stream::SequenceParts;
    use shardline_core::{MetricEvent, MetricType, ShardId};

    fn record(offset: u64, instance: &str, ts: i64, ms: i64) -> SinkRecord {
        SinkRecord {
            shard: ShardId(1),
            sequence_number: SequenceParts {
                shard_index: 1,
                offset,
                shard_created_secs: 1,
                arrival_secs: ts as u64,
            }
            .encode(),
            arrival_ms: ts * 1000,
            event: std::sync::Arc::new(MetricEvent {
                metric_id: format!("cpu-{ts}"),
                metric_type: MetricType::CpuUtilization,
                timestamp: ts,
                timestamp_ms: Some(ts * 1000 + ms),
                value: 1.0,
                unit: None,
                instance_id: instance.to_string(),
                region: "eu-west-1".to_string(),
                collected_at: String::new(),
            }),
        }
    }

    /// The reference order: a full sort on (instance, timestamp, event time, position).
    fn reference(rows: &[&SinkRecord]) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..rows.len() as u32).collect();
        idx.sort_by(|&a, &b| {
            let (x, y) = (&rows[a as usize].event, &rows[b as usize].event);
            (&x.instance_id, x.timestamp, x.event_time_ms(), a).cmp(&(
                &y.instance_id,
                y.timestamp,
                y.event_time_ms(),
                b,
            ))
        });
        idx
    }

    #[test]
    fn sorted_input_needs_no_permutation() -> Result<(), Error> {
        let recs = [
            record(0, "i-a", 10, 0),
            record(1, "i-a", 10, 5),
            record(2, "i-a", 20, 0),
            record(3, "i-b", 5, 0),
        ];
        let rows: Vec<&SinkRecord> = recs.iter().collect();
        assert_eq!(sort_permutation(&rows)?, None);
        assert_eq!(sort_permutation(&[])?, None);
        Ok(())
    }

    #[test]
    fn interleaved_and_late_rows_match_a_full_sort() -> Result<(), Error> {
        // Interleaved instances, a late sample (ts 5 after ts 30), duplicate keys in input
        // order, ids whose first-seen order differs from their sorted order.
        let mut recs = Vec::new();
        let ids = ["i-9", "i-10", "i-2", "i-b", "i-a"];
        for k in 0..200u64 {
            let id = ids[(k * 7 % 5) as usize];
            let ts = [30, 10, 5, 30, 20][(k % 5) as usize] + (k / 50) as i64;
            recs.push(record(k, id, ts, (k % 3) as i64));
        }
        let rows: Vec<&SinkRecord> = recs.iter().collect();
        let perm = sort_permutation(&rows)?;
        assert_eq!(perm, Some(reference(&rows)));
        Ok(())
    }
}
