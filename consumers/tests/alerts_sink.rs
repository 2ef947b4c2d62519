//! The alerts sink over the embedded state store and a real outbox notifier: scripted series,
//! read back from the outbox file.

use shardline_consumers::sinks::alerts::{
    AlarmRule, AlarmState, AlertsConfig, AlertsSink, Statistic, TreatMissingData, read_alarm_states,
};
use shardline_consumers::{Sink, SinkRecord};
use shardline_core::ports::{Notifier, StateStore};
use shardline_core::{MetricEvent, MetricType, SequenceParts, ShardId};
use shardline_local::{Envelope, LocalBackends, LocalOptions, OutboxNotifier};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A minute boundary.
const T0_MS: i64 = 1_771_500_000_000;
const MIN: i64 = 60_000;

/// A scripted stream of one shard: records get increasing offsets.
struct Script {
    offset: u64,
}

impl Script {
    fn new() -> Self {
        Self { offset: 0 }
    }

    fn sample(&mut self, instance: &str, metric: MetricType, ms: i64, value: f64) -> SinkRecord {
        self.offset += 1;
        let secs = ms.div_euclid(1000);
        SinkRecord {
            shard: ShardId(0),
            sequence_number: SequenceParts {
                shard_index: 0,
                offset: self.offset,
                shard_created_secs: 1_771_000_000,
                arrival_secs: secs as u64,
            }
            .encode(),
            arrival_ms: ms,
            event: std::sync::Arc::new(MetricEvent {
                metric_id: format!("{}-{secs}", metric.id_prefix()),
                metric_type: metric,
                timestamp: secs,
                timestamp_ms: Some(ms),
                value,
                unit: None,
                instance_id: instance.to_string(),
                region: "eu-west-1".to_string(),
                collected_at: "2026-02-19T11:25:09".to_string(),
            }),
        }
    }

    /// One cpu sample in the middle of each listed minute (None: no sample that minute).
    fn cpu_series(&mut self, instance: &str, values: &[Option<f64>]) -> Vec<SinkRecord> {
        values
            .iter()
            .enumerate()
            .filter_map(|(m, v)| {
                v.map(|v| {
                    self.sample(
                        instance,
                        MetricType::CpuUtilization,
                        T0_MS + m as i64 * MIN + 30_000,
                        v,
                    )
                })
            })
            .collect()
    }

    /// A sample of a metric no rule watches, advancing the shard's event time to `ms`.
    fn tick(&mut self, ms: i64) -> SinkRecord {
        self.sample("i-clock", MetricType::NetworkTraffic, ms, 100.0)
    }
}

struct Env {
    _dir: tempfile::TempDir,
    outbox: PathBuf,
    state: Arc<dyn StateStore>,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let local = LocalBackends::open(dir.path(), LocalOptions::default()).expect("backends");
        Self {
            outbox: dir.path().join("outbox.jsonl"),
            state: local.state.clone(),
            _dir: dir,
        }
    }

    fn sink(&self, config: AlertsConfig) -> AlertsSink {
        sink_with(&self.outbox, self.state.clone(), config)
    }

    fn sent(&self) -> Vec<Envelope> {
        OutboxNotifier::read_all(&self.outbox).expect("outbox")
    }

    fn subjects(&self) -> Vec<String> {
        self.sent().into_iter().map(|e| e.subject).collect()
    }
}

fn sink_with(outbox: &Path, state: Arc<dyn StateStore>, config: AlertsConfig) -> AlertsSink {
    let notifier: Arc<dyn Notifier> = Arc::new(OutboxNotifier::open(outbox).expect("outbox"));
    AlertsSink::new(notifier, state, config).expect("sink")
}

/// State written after every batch.
fn config(rules: Vec<AlarmRule>) -> AlertsConfig {
    AlertsConfig {
        grace: Duration::ZERO,
        rules,
        buffer_interval: Duration::ZERO,
        ..AlertsConfig::default()
    }
}

fn cpu_rule(m: u32, n: u32) -> AlarmRule {
    AlarmRule {
        statistic: Statistic::Average,
        evaluation_periods: n,
        datapoints_to_alarm: m,
        ..AlarmRule::new(MetricType::CpuUtilization, 80.0)
    }
}

async fn feed(sink: &mut AlertsSink, records: Vec<SinkRecord>, batch: usize) {
    for chunk in records.chunks(batch) {
        let durable = sink.write(ShardId(0), chunk, 0).await.expect("write");
        assert_eq!(durable.as_ref(), chunk.last().map(|r| &r.sequence_number));
    }
}

#[tokio::test]
async fn two_of_three_breaching_alarms_and_one_of_three_stays_ok() {
    let env = Env::new();
    let mut sink = env.sink(config(vec![cpu_rule(2, 3)]));
    let mut s = Script::new();
    // i-123456: 2 of 3 breaching at minute 3, then breaching on (never re-notified).
    let mut records = s.cpu_series(
        "i-123456",
        &[50.0, 90.0, 50.0, 90.0, 90.0, 90.0, 90.0, 90.0, 90.0].map(Some),
    );
    // i-654321: never more than 1 of 3 breaching.
    records.extend(s.cpu_series(
        "i-654321",
        &[50.0, 50.0, 50.0, 90.0, 50.0, 50.0, 90.0, 50.0, 50.0].map(Some),
    ));
    records.push(s.tick(T0_MS + 9 * MIN));
    let records = renumber(records);
    feed(&mut sink, records, 3).await;

    let sent = env.sent();
    assert_eq!(sent.len(), 1, "{:?}", env.subjects());
    let n = &sent[0];
    assert_eq!(n.subject, "ALARM: \"cpu_utilization > 80\" on i-123456");
    assert_eq!(
        n.topic,
        "arn:aws:sns:eu-west-1:190517931751:InfraMonitoring-Alarms"
    );
    for needle in [
        "i-123456",
        "cpu_utilization",
        "90 Percent",
        "> 80",
        "2 of the last 3",
        "fires at 2 of 3",
        "2026-02-19T11:24:00.000Z",
    ] {
        assert!(
            n.message.contains(needle),
            "`{needle}` missing from {}",
            n.message
        );
    }
    assert_eq!(n.attributes["NewStateValue"], "ALARM");
    assert_eq!(n.attributes["OldStateValue"], "OK");

    let states = sink.alarm_states();
    let state_of = |i: &str| states.iter().find(|s| s.instance_id == i).map(|s| s.state);
    assert_eq!(state_of("i-123456"), Some(AlarmState::Alarm));
    assert_eq!(state_of("i-654321"), Some(AlarmState::Ok));
    let stored = read_alarm_states(env.state.as_ref(), "alarms.alerts")
        .await
        .expect("states");
    assert_eq!(stored, states);
    let hot = stored
        .iter()
        .find(|s| s.instance_id == "i-123456")
        .expect("alarm");
    assert_eq!(hot.since_ms, Some(T0_MS + 4 * MIN));
    assert_eq!(hot.last_value, Some(90.0));
}

#[tokio::test]
async fn alarm_once_while_breaching_then_one_ok_and_none_from_insufficient_data() {
    let env = Env::new();
    let mut sink = env.sink(config(vec![cpu_rule(1, 1)]));
    let mut s = Script::new();
    let mut values = vec![Some(95.0); 12];
    values.extend([Some(40.0); 4]);
    let mut records = s.cpu_series("i-100001", &values);
    // Another instance that is only ever fine: INSUFFICIENT_DATA → OK, not notified.
    records.extend(s.cpu_series("i-100002", &[Some(10.0); 16]));
    records.push(s.tick(T0_MS + 16 * MIN));
    // Sequence order is stream order: renumber after interleaving by time.
    feed(&mut sink, renumber(records), 5).await;

    assert_eq!(
        env.subjects(),
        vec![
            "ALARM: \"cpu_utilization > 80\" on i-100001".to_string(),
            "OK: \"cpu_utilization > 80\" on i-100001".to_string(),
        ]
    );
    let ok = &env.sent()[1];
    assert!(ok.message.contains("from ALARM to OK"), "{}", ok.message);
    assert!(ok.message.contains("40 Percent"), "{}", ok.message);
    let states = sink.alarm_states();
    assert!(
        states.iter().all(|s| s.state == AlarmState::Ok),
        "{states:?}"
    );
}

/// Orders records by event time and gives them consecutive offsets.
fn renumber(mut records: Vec<SinkRecord>) -> Vec<SinkRecord> {
    records.sort_by_key(|r| r.event.event_time_ms());
    let mut s = Script::new();
    records
        .into_iter()
        .map(|r| {
            s.sample(
                &r.event.instance_id,
                r.event.metric_type,
                r.event.event_time_ms(),
                r.event.value,
            )
        })
        .collect()
}

#[tokio::test]
async fn treat_missing_data_variants() {
    let env = Env::new();
    let rules: Vec<AlarmRule> = [
        ("missing", TreatMissingData::Missing),
        ("ignore", TreatMissingData::Ignore),
        ("breaching", TreatMissingData::Breaching),
        ("notBreaching", TreatMissingData::NotBreaching),
    ]
    .into_iter()
    .map(|(name, treat)| AlarmRule {
        name: Some(name.to_string()),
        treat_missing_data: treat,
        ..cpu_rule(2, 2)
    })
    .collect();
    let mut sink = env.sink(config(rules));
    let mut s = Script::new();
    // Two samples, a gap of minutes 2..11, one sample in minute 12; the tick closes minute 12.
    let mut shape = vec![None; 13];
    let mut hot = shape.clone();
    hot[0] = Some(90.0);
    hot[1] = Some(90.0);
    hot[12] = Some(50.0);
    shape[0] = Some(50.0);
    shape[1] = Some(50.0);
    shape[12] = Some(50.0);
    let mut records = s.cpu_series("i-hot", &hot);
    records.extend(s.cpu_series("i-cool", &shape));
    records.push(s.tick(T0_MS + 13 * MIN));
    feed(&mut sink, renumber(records), 4).await;

    let mut got: Vec<(String, String, String, i64)> = env
        .sent()
        .into_iter()
        .map(|e| {
            let at = shardline_core::time::parse_rfc3339_ms(&e.attributes["StateChangeTime"])
                .expect("time");
            (
                e.attributes["AlarmName"].clone(),
                e.attributes["InstanceID"].clone(),
                e.attributes["NewStateValue"].clone(),
                (at - T0_MS) / MIN,
            )
        })
        .collect();
    got.sort();
    let want = |rows: &[(&str, &str, &str, i64)]| {
        let mut v: Vec<(String, String, String, i64)> = rows
            .iter()
            .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), *d))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        got,
        want(&[
            // missing: ALARM, then INSUFFICIENT_DATA in the gap, then OK: neither notified.
            ("missing", "i-hot", "ALARM", 2),
            // ignore: the gap changes nothing; the sample of minute 12 brings OK.
            ("ignore", "i-hot", "ALARM", 2),
            ("ignore", "i-hot", "OK", 13),
            // breaching: the gap keeps i-hot in ALARM and sends i-cool to ALARM.
            ("breaching", "i-hot", "ALARM", 2),
            ("breaching", "i-hot", "OK", 13),
            ("breaching", "i-cool", "ALARM", 4),
            ("breaching", "i-cool", "OK", 13),
            // notBreaching: the first missing minute is enough for OK.
            ("notBreaching", "i-hot", "ALARM", 2),
            ("notBreaching", "i-hot", "OK", 3),
        ])
    );
    let states = sink.alarm_states();
    assert!(
        states.iter().all(|s| s.state == AlarmState::Ok),
        "{states:?}"
    );
}

#[tokio::test]
async fn flush_at_shutdown_evaluates_only_periods_ended_by_wall_clock() {
    let env = Env::new();
    let mut sink = env.sink(config(vec![cpu_rule(1, 1)]));
    let mut s = Script::new();
    feed(&mut sink, s.cpu_series("i-200001", &[Some(99.0)]), 10).await;
    assert!(env.sent().is_empty(), "the period is still open");
    sink.flush(T0_MS + 59_000, true).await.expect("flush");
    assert!(
        env.sent().is_empty(),
        "the period has not ended by the wall clock"
    );
    sink.flush(T0_MS + MIN + 1, false).await.expect("flush");
    assert!(env.sent().is_empty(), "only a forced flush evaluates");
    sink.flush(T0_MS + MIN + 1, true).await.expect("flush");
    assert_eq!(
        env.subjects(),
        vec!["ALARM: \"cpu_utilization > 80\" on i-200001"]
    );
    // A late sample of the evaluated minute is dropped and counted.
    feed(
        &mut sink,
        vec![s.sample("i-200001", MetricType::CpuUtilization, T0_MS + 45_000, 10.0)],
        1,
    )
    .await;
    assert_eq!(sink.late_samples(), 1);
}

#[test]
fn config_defaults_to_the_seed_and_names_bad_settings() {
    let c: AlertsConfig = toml::from_str("").expect("empty");
    let names: Vec<String> = c.rules.iter().map(AlarmRule::name).collect();
    assert_eq!(
        names,
        [
            "cpu_utilization > 80",
            "memory_usage > 85",
            "disk_usage > 90"
        ]
    );
    assert_eq!(
        c.topic,
        "arn:aws:sns:eu-west-1:190517931751:InfraMonitoring-Alarms"
    );
    c.validate().expect("valid");

    let c: AlertsConfig = toml::from_str(
        r#"
        grace = "5s"
        [[rules]]
        metric = "memory_usage"
        threshold = 70
        comparison_operator = "GreaterThanOrEqualToThreshold"
        statistic = "Average"
        period = "5m"
        evaluation_periods = 3
        datapoints_to_alarm = 2
        treat_missing_data = "notBreaching"
        "#,
    )
    .expect("rules");
    assert_eq!(c.grace, Duration::from_secs(5));
    assert_eq!(c.rules.len(), 1);
    assert_eq!(c.rules[0].period, Duration::from_secs(300));
    assert_eq!(c.rules[0].name(), "memory_usage >= 70");
    c.validate().expect("valid");

    let err = toml::from_str::<AlertsConfig>(
        "[[rules]]\nmetric = \"cpu_utilization\"\nthreshold = 1\nthresold = 2",
    )
    .expect_err("typo");
    assert!(err.to_string().contains("thresold"), "{err}");
    let err = toml::from_str::<AlertsConfig>("grace = \"soon\"").expect_err("bad duration");
    assert!(
        err.to_string().contains("`soon` is not a duration"),
        "{err}"
    );

    let bad = config(vec![AlarmRule {
        period: Duration::from_secs(45),
        ..cpu_rule(1, 1)
    }]);
    let err = bad.validate().expect_err("45 s period");
    assert!(
        err.to_string()
            .contains("rules[0]: period 45s is not allowed"),
        "{err}"
    );
    let bad = config(vec![cpu_rule(3, 2)]);
    let err = bad.validate().expect_err("M > N");
    assert!(err.to_string().contains("datapoints_to_alarm = 3"), "{err}");
    let bad = config(vec![cpu_rule(1, 1), cpu_rule(1, 2)]);
    assert!(
        bad.validate()
            .expect_err("same name")
            .to_string()
            .contains("used twice")
    );
}

#[tokio::test]
async fn seed_rules_at_the_seed_cadence_notify_once_per_episode() {
    let env = Env::new();
    let mut sink = env.sink(AlertsConfig::default());
    let mut s = Script::new();
    let three_hours = 3 * 60 * MIN;
    // Every 3 hours: cpu 91, 95, 88 (breaching), then 40; memory always fine; disk 92 once.
    let mut records = Vec::new();
    for (k, cpu) in [91.0, 95.0, 88.0, 40.0, 45.0].into_iter().enumerate() {
        let at = T0_MS + k as i64 * three_hours + 9_000;
        records.push(s.sample("i-573923", MetricType::CpuUtilization, at, cpu));
        records.push(s.sample("i-573923", MetricType::MemoryUsage, at + 1, 60.0));
        let disk = if k == 1 { 92.0 } else { 50.0 };
        records.push(s.sample("i-573923", MetricType::DiskUsage, at + 2, disk));
    }
    for chunk in records.chunks(3) {
        // One collection run per batch, as the seed's schedule delivers them.
        sink.write(ShardId(0), chunk, 0).await.expect("write");
    }
    assert_eq!(
        env.subjects(),
        vec![
            "ALARM: \"cpu_utilization > 80\" on i-573923",
            "ALARM: \"disk_usage > 90\" on i-573923",
            "OK: \"disk_usage > 90\" on i-573923",
            "OK: \"cpu_utilization > 80\" on i-573923",
        ]
    );
}

/// `records` as read from `shard` (its index in their sequence numbers).
fn on_shard(records: Vec<SinkRecord>, shard: u32) -> Vec<SinkRecord> {
    records
        .into_iter()
        .map(|mut r| {
            let mut parts = r.sequence_number.parts().expect("parts");
            parts.shard_index = shard;
            r.sequence_number = parts.encode();
            r.shard = ShardId(shard);
            r
        })
        .collect()
}

#[tokio::test]
async fn an_instance_read_from_another_shard_is_evaluated_on_that_shards_event_time() {
    let env = Env::new();
    let mut sink = env.sink(config(vec![cpu_rule(1, 1)]));
    let mut s = Script::new();
    // Minute 0 read from shard 0 (not breaching); shard 0's event time stays in minute 0.
    let first = on_shard(s.cpu_series("i-mover", &[Some(50.0)]), 0);
    sink.write(ShardId(0), &first, 0).await.expect("write");
    // Minute 1 read from shard 1 (breaching), then shard 1's event time passes minute 1.
    let mut later = s.cpu_series("i-mover", &[None, Some(95.0)]);
    later.push(s.tick(T0_MS + 2 * MIN));
    let later = on_shard(later, 1);
    sink.write(ShardId(1), &later, 0).await.expect("write");

    assert_eq!(
        env.subjects(),
        vec!["ALARM: \"cpu_utilization > 80\" on i-mover".to_string()]
    );
    let states = sink.alarm_states();
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(states[0].state, AlarmState::Alarm);
    assert_eq!(states[0].since_ms, Some(T0_MS + 2 * MIN));
    assert_eq!(states[0].last_value, Some(95.0));
}

/// The instances holding alarms, in the sink and in the state store.
async fn alarmed_instances(env: &Env, sink: &AlertsSink) -> (Vec<String>, Vec<String>) {
    let held = sink.alarm_states().into_iter().map(|a| a.instance_id);
    let stored = read_alarm_states(env.state.as_ref(), "alarms.alerts")
        .await
        .expect("read alarm states")
        .into_iter()
        .map(|a| a.instance_id);
    (held.collect(), stored.collect())
}

#[tokio::test]
async fn an_instance_silent_for_forget_after_has_its_alarms_forgotten() {
    let env = Env::new();
    let forgetful = AlertsConfig {
        forget_after: Duration::from_secs(10 * 60),
        ..config(vec![cpu_rule(1, 1)])
    };
    let mut sink = env.sink(forgetful.clone());
    let mut s = Script::new();
    // i-gone breaches in minute 0 and never reports again; i-stays reports every minute.
    let mut records = s.cpu_series("i-gone", &[Some(95.0)]);
    records.extend(s.cpu_series("i-stays", &[Some(50.0); 8]));
    feed(&mut sink, records, 4).await;
    // Minute 8: i-gone's last datapoint (end of minute 0) is 8 minutes old: kept.
    let both = vec!["i-gone".to_string(), "i-stays".to_string()];
    assert_eq!(alarmed_instances(&env, &sink).await, (both.clone(), both));

    let later: Vec<Option<f64>> = (0..20).map(|m| (m >= 8).then_some(50.0)).collect();
    feed(&mut sink, s.cpu_series("i-stays", &later), 4).await;
    // Minute 19: 19 minutes without a sample from i-gone: forgotten, in memory and stored.
    let stays = vec!["i-stays".to_string()];
    assert_eq!(
        alarmed_instances(&env, &sink).await,
        (stays.clone(), stays.clone())
    );
    assert_eq!(
        env.subjects(),
        vec!["ALARM: \"cpu_utilization > 80\" on i-gone".to_string()],
        "forgetting sends nothing"
    );

    // After a restart it stays forgotten; when it reports again it starts afresh.
    drop(sink);
    let mut sink = env.sink(forgetful);
    let back: Vec<Option<f64>> = (0..22).map(|m| (m >= 20).then_some(40.0)).collect();
    let mut records = s.cpu_series("i-gone", &back);
    records.push(s.tick(T0_MS + 22 * MIN + 30_000));
    feed(&mut sink, records, 4).await;
    let states = sink.alarm_states();
    let gone = states
        .iter()
        .find(|a| a.instance_id == "i-gone")
        .expect("i-gone again");
    assert_eq!(gone.state, AlarmState::Ok);
    assert_eq!(
        gone.since_ms,
        Some(T0_MS + 21 * MIN),
        "a new alarm, not the old ALARM one"
    );
    assert_eq!(env.subjects().len(), 1, "no OK for the forgotten ALARM");
}

#[tokio::test]
async fn with_forget_after_zero_silent_instances_keep_their_alarms() {
    let env = Env::new();
    let keep = AlertsConfig {
        forget_after: Duration::ZERO,
        ..config(vec![cpu_rule(1, 1)])
    };
    let mut sink = env.sink(keep);
    let mut s = Script::new();
    let mut records = s.cpu_series("i-gone", &[Some(95.0)]);
    let stays: Vec<Option<f64>> = vec![Some(50.0); 120];
    records.extend(s.cpu_series("i-stays", &stays));
    feed(&mut sink, records, 16).await;
    let both = vec!["i-gone".to_string(), "i-stays".to_string()];
    assert_eq!(alarmed_instances(&env, &sink).await, (both.clone(), both));
}

/// The reported panic: one sample stamped 9223372036854775 s ("attempt to add with overflow"
/// when its period's end was computed). The consumers' decoder keeps such times out; the sink
/// itself must not panic or wrap whatever it is given.
#[tokio::test]
async fn extreme_event_times_neither_panic_nor_wrap() {
    let env = Env::new();
    // With a grace period the corrupt sample's period stays open until the forced flush,
    // which computed its end.
    let mut sink = env.sink(AlertsConfig {
        grace: Duration::from_secs(10),
        ..config(vec![cpu_rule(1, 1)])
    });
    let mut s = Script::new();
    let mut records = s.cpu_series("i-normal", &[Some(95.0)]);
    records.push(s.sample(
        "i-corrupt",
        MetricType::CpuUtilization,
        9_223_372_036_854_775_000,
        95.0,
    ));
    feed(&mut sink, records, 10).await;
    sink.flush(i64::MAX, true)
        .await
        .expect("forced flush at the end of time");
    let at_max = vec![s.sample("i-max", MetricType::CpuUtilization, i64::MAX, 95.0)];
    feed(&mut sink, at_max, 10).await;
    sink.flush(i64::MAX, true)
        .await
        .expect("forced flush at the end of time");
    // Periods at the end of time close at i64::MAX, not at a wrapped negative time. (The
    // shard's event time moved there, so the normal instance's alarm was forgotten as silent:
    // what the decoder's event-time window prevents, see tests/bad_input.rs.)
    let states = sink.alarm_states();
    let extreme: Vec<_> = states
        .iter()
        .filter(|a| a.instance_id != "i-normal")
        .map(|a| (a.instance_id.as_str(), a.state, a.since_ms))
        .collect();
    assert_eq!(
        extreme,
        [
            ("i-corrupt", AlarmState::Alarm, Some(i64::MAX)),
            ("i-max", AlarmState::Alarm, Some(i64::MAX))
        ],
        "{states:?}"
    );
}
