//! The dashboard's JSON endpoints.
//!
//! - `GET /api/overview`: stream, consumers (throughput, lag, records behind), alarm counts
//!   and the alarms firing, recent notifications, dead letters, flow executions.
//! - `GET /api/chart?metric=cpu_utilization&minutes=60&limit=10&q=i-12`: the top `limit`
//!   series of a metric by their newest minute's average (or those whose instance id contains
//!   `q`), with their datapoints over the last `minutes`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shardline_consumers::sinks::alerts::{self, AlarmState};
use shardline_core::ports::{CheckpointKey, DeadLetterStore, MetricPublisher, StatisticsQuery};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::flows;
use crate::consumer_set::ConsumerSet;
use crate::data::Data;

/// What the endpoints read from, and the last counts seen (for rates).
pub struct DashState {
    data: Arc<Data>,
    consumers: Option<Arc<ConsumerSet>>,
    last_counts: Mutex<HashMap<String, (Instant, u64)>>,
    letters: Mutex<Option<(u64, Vec<Value>)>>,
}

impl DashState {
    /// Endpoints over `data`, with the running consumers when `up` serves them.
    pub fn new(data: Arc<Data>, consumers: Option<Arc<ConsumerSet>>) -> Self {
        Self {
            data,
            consumers,
            last_counts: Mutex::new(HashMap::new()),
            letters: Mutex::new(None),
        }
    }
}

fn failed(e: anyhow::Error) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response()
}

/// `GET /api/overview`.
pub async fn overview(State(s): State<Arc<DashState>>) -> Response {
    match overview_json(&s).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => failed(e),
    }
}

async fn overview_json(s: &DashState) -> anyhow::Result<Value> {
    let config = &s.data.config;
    let backends = s.data.backends().await?;
    let stream = &config.stream.name;
    // Kinesis counts no records per shard: the embedded log's figures only.
    let stats = match s.data.embedded_log().await? {
        Some(log) => log.shard_stats(stream).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let next: BTreeMap<_, _> = stats.iter().map(|x| (x.shard, x.next_offset)).collect();
    let shards: Vec<Value> = stats
        .iter()
        .map(|x| {
            json!({
                "shard": x.shard.to_string(),
                "records": x.next_offset - x.trim_offset,
                "last_arrival": x.last_arrival_ms.map(shardline_core::time::format_rfc3339_ms),
            })
        })
        .collect();
    let now = Instant::now();
    let running: BTreeMap<String, _> = s
        .consumers
        .as_ref()
        .map(|c| c.statuses().into_iter().collect())
        .unwrap_or_default();
    let mut consumers = Vec::new();
    for name in configured_consumers(s) {
        let mut behind = 0u64;
        for (shard, next_offset) in &next {
            let key = CheckpointKey {
                consumer: name.clone(),
                stream: stream.clone(),
                shard: *shard,
            };
            let done = match backends.checkpoints.get(&key).await? {
                Some(c) => c.sequence_number.parts().map(|p| p.offset + 1).unwrap_or(0),
                None => 0,
            };
            behind += next_offset.saturating_sub(done);
        }
        let dead = backends.dead_letters.count(Some(&name)).await?;
        let (state, records_in, delivered, lag_ms, rate) = match running.get(&name) {
            Some(status) => {
                let snap = status.snapshot();
                let mut last = s.last_counts.lock().unwrap_or_else(|e| e.into_inner());
                let rate = match last.insert(name.clone(), (now, snap.records_delivered)) {
                    Some((t, n)) if snap.records_delivered >= n => {
                        let secs = now.duration_since(t).as_secs_f64();
                        if secs > 0.0 {
                            (snap.records_delivered - n) as f64 / secs
                        } else {
                            0.0
                        }
                    }
                    _ => 0.0,
                };
                (
                    "running",
                    snap.records_in,
                    snap.records_delivered,
                    snap.max_millis_behind(),
                    rate,
                )
            }
            None => ("stopped", 0, 0, 0, 0.0),
        };
        consumers.push(json!({
            "name": name, "state": state, "records_in": records_in, "delivered": delivered,
            "rate": rate.round(), "lag_ms": lag_ms, "records_behind": behind,
            "dead_letters": dead,
        }));
    }
    let alarm_states =
        alerts::read_alarm_states(backends.state.as_ref(), &alerts_namespace(s)).await?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for a in &alarm_states {
        *counts.entry(a.state.to_string()).or_default() += 1;
    }
    let mut firing: Vec<_> = alarm_states
        .iter()
        .filter(|a| a.state == AlarmState::Alarm)
        .collect();
    firing.sort_by_key(|a| std::cmp::Reverse(a.since_ms));
    let firing: Vec<Value> = firing
        .iter()
        .take(100)
        .map(|a| {
            json!({
                "name": a.name, "instance_id": a.instance_id, "region": a.region,
                "since": a.since_ms.map(shardline_core::time::format_rfc3339_ms),
                "last_value": a.last_value,
            })
        })
        .collect();
    let letters = recent_letters(s, backends.dead_letters.as_ref()).await?;
    let flows = flows::recent(backends.state.as_ref(), 20).await?;
    Ok(json!({
        "now": shardline_core::time::format_rfc3339_ms(shardline_core::time::now_ms()),
        "data_dir": config.data_dir.display().to_string(),
        "live": s.consumers.is_some(),
        "stream": { "name": stream, "records": shards.iter().map(|x| x["records"].as_u64().unwrap_or(0)).sum::<u64>(), "shards": shards },
        "consumers": consumers,
        "alarms": { "total": alarm_states.len(), "counts": counts, "firing": firing },
        "notifications": recent_notifications(s),
        "dead_letters": letters,
        "flows": flows,
    }))
}

fn configured_consumers(s: &DashState) -> Vec<String> {
    let c = &s.data.config.consumers;
    [
        (c.s3.enabled, &c.s3.consumer.name),
        (c.dynamodb.enabled, &c.dynamodb.consumer.name),
        (c.cloudwatch.enabled, &c.cloudwatch.consumer.name),
        (c.alerts.enabled, &c.alerts.consumer.name),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| n.clone())
    .collect()
}

fn alerts_namespace(s: &DashState) -> String {
    let config = &s.data.config;
    let mut cfg = config.consumers.alerts.sink.clone();
    cfg.consumer
        .clone_from(&config.consumers.alerts.consumer.name);
    cfg.state_namespace()
}

/// The dead letters' total and the newest 20 (read again only when the count changed).
async fn recent_letters(s: &DashState, store: &dyn DeadLetterStore) -> anyhow::Result<Value> {
    let total = store.count(None).await?;
    let cached = s
        .letters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .filter(|(n, _)| *n == total)
        .map(|(_, v)| v.clone());
    let recent = match cached {
        Some(v) => v,
        None => {
            let all = store.list(None).await?;
            let v: Vec<Value> = all
                .iter()
                .rev()
                .take(20)
                .map(|l| {
                    json!({
                        "at": shardline_core::time::format_rfc3339_ms(l.at_ms),
                        "consumer": l.consumer, "shard": l.shard.to_string(),
                        "reason": l.reason,
                        "data": String::from_utf8_lossy(&l.data).chars().take(200).collect::<String>(),
                    })
                })
                .collect();
            *s.letters.lock().unwrap_or_else(|e| e.into_inner()) = Some((total, v.clone()));
            v
        }
    };
    Ok(json!({ "total": total, "recent": recent }))
}

/// The newest notifications in the outbox (when the notifier has an outbox target).
fn recent_notifications(s: &DashState) -> Vec<Value> {
    use shardline_local::NotifierConfig;
    fn outbox(c: &NotifierConfig) -> Option<Option<std::path::PathBuf>> {
        match c {
            NotifierConfig::Outbox { path } => Some(path.clone()),
            NotifierConfig::Fanout { targets } => targets.iter().find_map(outbox),
            _ => None,
        }
    }
    let data_dir = &s.data.config.data_dir;
    let Some(path) = outbox(&s.data.config.notifier) else {
        return Vec::new();
    };
    let path = match path {
        Some(p) if p.is_absolute() => p,
        Some(p) => data_dir.join(p),
        None => data_dir.join("notifications").join("outbox.jsonl"),
    };
    let Ok(text) = read_tail(&path, 256 << 10) else {
        return Vec::new();
    };
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .take(20)
        .map(|v| {
            json!({
                "at": v["published_ms"].as_i64().map(shardline_core::time::format_rfc3339_ms),
                "subject": v["subject"], "topic": v["topic"],
            })
        })
        .collect()
}

fn read_tail(path: &std::path::Path, max: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    // Drop a partial first line.
    Ok(if len > max {
        text.split_once('\n')
            .map(|x| x.1.to_string())
            .unwrap_or_default()
    } else {
        text
    })
}

/// Query of `GET /api/chart`.
#[derive(Debug, Deserialize)]
pub struct ChartQuery {
    metric: String,
    #[serde(default = "default_minutes")]
    minutes: i64,
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    q: String,
}

fn default_minutes() -> i64 {
    60
}

fn default_limit() -> usize {
    10
}

/// The most points a chart series has.
const MAX_POINTS: i64 = 120;

/// `GET /api/chart`.
pub async fn chart(State(s): State<Arc<DashState>>, Query(q): Query<ChartQuery>) -> Response {
    match chart_json(&s, q).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => failed(e),
    }
}

async fn chart_json(s: &DashState, q: ChartQuery) -> anyhow::Result<Value> {
    if q.metric.parse::<shardline_core::MetricType>().is_err() {
        anyhow::bail!("metric {:?} is not one of the four metric types", q.metric);
    }
    let minutes = q.minutes.clamp(5, 60 * 24 * 14);
    let limit = q.limit.clamp(1, 50);
    // Ranking thousands of series needs the embedded metric store's listing.
    if s.data.config.backend.metrics != crate::config::BackendKind::Embedded {
        anyhow::bail!(
            "the charts read the embedded metric store, and [backend] metrics is \"aws\": see \
             the metrics in CloudWatch's console"
        );
    }
    let backends = s.data.local_stores().await?;
    let namespace = &s.data.config.consumers.cloudwatch.sink.namespace;
    let now = shardline_core::time::now_ms();
    let end = (now.div_euclid(60_000) + 1) * 60_000;
    let start = end - minutes * 60_000;
    let series = backends
        .metrics
        .latest_by_series(namespace, &q.metric, start, end)
        .await?;
    let needle = q.q.trim().to_ascii_lowercase();
    let mut matched: Vec<_> = series
        .iter()
        .filter(|x| {
            needle.is_empty()
                || x.dimensions
                    .get("InstanceID")
                    .is_some_and(|i| i.to_ascii_lowercase().contains(&needle))
        })
        .collect();
    let avg = |v: &shardline_core::ports::StatisticSet| {
        if v.sample_count > 0.0 {
            v.sum / v.sample_count
        } else {
            0.0
        }
    };
    matched.sort_by(|a, b| avg(&b.values).total_cmp(&avg(&a.values)));
    let total = matched.len();
    let period_secs = ((minutes * 60 / MAX_POINTS).div_euclid(60).max(1) * 60) as u32;
    let mut out = Vec::new();
    for x in matched.into_iter().take(limit) {
        let query = StatisticsQuery {
            namespace: namespace.clone(),
            metric_name: q.metric.clone(),
            dimensions: x.dimensions.clone(),
            start_ms: start,
            end_ms: end,
            period_secs,
        };
        let points: Vec<Value> = backends
            .metrics
            .get_metric_statistics(&query)
            .await?
            .iter()
            .map(|p| json!([p.timestamp_ms, p.average(), p.values.maximum]))
            .collect();
        out.push(json!({
            "instance_id": x.dimensions.get("InstanceID"),
            "region": x.dimensions.get("Region"),
            "latest": avg(&x.values),
            "points": points,
        }));
    }
    Ok(json!({
        "metric": q.metric, "start": start, "end": end, "period": period_secs,
        "series_total": series.len(), "matched": total, "series": out,
    }))
}
