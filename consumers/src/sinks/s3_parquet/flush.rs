//! The flush of one shard's buffer, step by step (see the commit protocol in [`super`]):
//! staging it in the manifest ([`stage`]), encoding its objects by event day
//! ([`encode_objects`]) and putting them ([`put_objects`]). [`super::sink`] drives these steps
//! and commits.

use bytes::Bytes;
use shardline_core::ports::ObjectStore;
use shardline_core::{Error, Result, ShardId};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::config::S3ParquetConfig;
use super::manifest::ManifestEntry;
use super::sink::ShardBuffer;
use super::writer::{
    self, EncodeOptions, encode_batch, encode_json_lines, metric_batch, writer_properties,
};
use crate::SinkRecord;

/// Why a flush under way did not finish.
#[derive(Debug)]
pub(super) enum FlightError {
    /// Encoding failed: the records, to go back into the buffer.
    Encode(Error, Vec<SinkRecord>),
    /// A put failed: the encoded objects, to be put again.
    Put(Error, Vec<StagedObject>),
}

/// One object of a flush, encoded.
#[derive(Debug, Clone)]
pub(super) struct StagedObject {
    pub(super) key: String,
    pub(super) body: Bytes,
    pub(super) content_type: &'static str,
}

impl StagedObject {
    pub(super) fn is_parquet(&self) -> bool {
        self.content_type == PARQUET
    }
}

pub(super) const PARQUET: &str = "application/vnd.apache.parquet";

/// Step 1 of the commit protocol: settles any older pending flush, then records this one as
/// pending in the manifest. Returns the staged entry and the buffer's records by event day.
pub(super) async fn stage(
    cfg: &S3ParquetConfig,
    store: &dyn ObjectStore,
    shard: ShardId,
    buf: &mut ShardBuffer,
) -> Result<Option<(ManifestEntry, Days)>> {
    buf.manifest
        .reconcile(store, &cfg.bucket, &cfg.prefix)
        .await?;
    // A record committed since it was buffered (another flush of the same range) is dropped.
    let manifest = &buf.manifest;
    buf.records.retain(|r| !manifest.covers(&r.sequence_number));
    let (Some(first), Some(last)) = (buf.records.first(), buf.records.last()) else {
        return Ok(None);
    };
    let shard_name = shard.to_string();
    let mut objects = Vec::new();
    let days = by_day(&buf.records);
    for (&day, rows) in &days {
        let (f, l) = (
            buf.records[rows[0]].sequence_number.as_str(),
            buf.records[rows[rows.len() - 1]].sequence_number.as_str(),
        );
        objects.push(writer::parquet_key(&cfg.prefix, day, &shard_name, f, l));
        if cfg.raw_json_archive {
            objects.push(writer::raw_json_key(
                &cfg.raw_prefix,
                day,
                &shard_name,
                f,
                l,
            ));
        }
    }
    let entry = ManifestEntry {
        first: first.sequence_number.clone(),
        last: last.sequence_number.clone(),
        rows: buf.records.len() as u64,
        objects,
    };
    buf.manifest.pending = Some(entry.clone());
    buf.manifest.save(store, &cfg.bucket, &cfg.prefix).await?;
    Ok(Some((entry, days)))
}

impl FlightError {
    #[cfg(test)]
    pub(super) fn into_error(self) -> Error {
        match self {
            FlightError::Encode(e, _) | FlightError::Put(e, _) => e,
        }
    }
}

/// Step 2 of the commit protocol, first half: builds and encodes the staged objects, each
/// day's rows (`days`, as staged) on a blocking thread. On failure the records come back.
pub(super) async fn encode_objects(
    cfg: &S3ParquetConfig,
    records: Vec<SinkRecord>,
    days: Days,
    shard: ShardId,
) -> std::result::Result<Vec<StagedObject>, FlightError> {
    let records = Arc::new(records);
    let back = |e: Error, records: Arc<Vec<SinkRecord>>| {
        FlightError::Encode(
            e,
            Arc::try_unwrap(records).unwrap_or_else(|shared| shared.as_ref().clone()),
        )
    };
    let props = match writer_properties(&EncodeOptions::from(cfg)) {
        Ok(p) => p,
        Err(e) => return Err(back(e, records)),
    };
    let shard_name = shard.to_string();
    let mut objects = Vec::new();
    for (day, rows) in days {
        let (f, l) = (
            records[rows[0]].sequence_number.as_str(),
            records[rows[rows.len() - 1]].sequence_number.as_str(),
        );
        let (props, archive, all) = (props.clone(), cfg.raw_json_archive, Arc::clone(&records));
        let encoded = tokio::task::spawn_blocking(move || {
            let rows: Vec<&SinkRecord> = rows.iter().map(|&i| &all[i]).collect();
            let body = encode_batch(&metric_batch(&rows)?, props)?;
            Ok::<_, Error>((body, archive.then(|| encode_json_lines(&rows))))
        })
        .await
        .map_err(|e| Error::Internal(format!("parquet encoding task failed: {e}")))
        .and_then(|r| r);
        let (body, json) = match encoded {
            Ok(bodies) => bodies,
            Err(e) => return Err(back(e, records)),
        };
        objects.push(StagedObject {
            key: writer::parquet_key(&cfg.prefix, day, &shard_name, f, l),
            body,
            content_type: PARQUET,
        });
        if let Some(json) = json {
            objects.push(StagedObject {
                key: writer::raw_json_key(&cfg.raw_prefix, day, &shard_name, f, l),
                body: json,
                content_type: "application/json",
            });
        }
    }
    Ok(objects)
}

/// Step 2, second half: puts the objects in order (each put is atomic; putting one again
/// replaces it with the same bytes). Returns Parquet bytes written; on failure, the objects.
pub(super) async fn put_objects(
    store: &dyn ObjectStore,
    bucket: &str,
    objects: Vec<StagedObject>,
) -> std::result::Result<u64, FlightError> {
    let mut bytes = 0;
    for o in &objects {
        if let Err(e) = store
            .put(bucket, &o.key, o.body.clone(), o.content_type)
            .await
        {
            return Err(FlightError::Put(e, objects));
        }
        if o.is_parquet() {
            bytes += o.body.len() as u64;
        }
    }
    Ok(bytes)
}

/// Indexes of a buffer's records by UTC event day (year, month, day), in sequence order.
pub(super) type Days = BTreeMap<(i32, u32, u32), Vec<usize>>;

/// Groups records (by index) by UTC event day, keeping sequence order within each day.
pub(super) fn by_day(records: &[SinkRecord]) -> Days {
    let mut days = Days::new();
    let mut last: Option<(i64, (i32, u32, u32))> = None;
    for (i, r) in records.iter().enumerate() {
        let day_no = r.event.event_time_ms().div_euclid(86_400_000);
        let day = match last {
            Some((n, d)) if n == day_no => d,
            _ => writer::utc_day(r.event.event_time_ms()),
        };
        last = Some((day_no, day));
        days.entry(day).or_default().push(i);
    }
    days
}
