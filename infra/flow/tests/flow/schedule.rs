//! EventBridge schedule expressions: next firing times and rejections.

use chrono::{DateTime, Utc};
use serde_json::json;
use shardline_flow::schedule::{Schedule, ScheduleConfig, Scheduler};
use shardline_flow::{FlowClock, VirtualClock};
use std::sync::{Arc, Mutex};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn fmt(ts: Vec<DateTime<Utc>>) -> Vec<String> {
    ts.iter()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .collect()
}

const AFTER: &str = "2026-02-19T11:25:09Z"; // a Thursday

#[test]
fn next_firings_for_a_table_of_expressions() {
    let table: Vec<(&str, &str, usize, Vec<&str>)> = vec![
        (
            "rate(3 hours)",
            "UTC",
            3,
            vec![
                "2026-02-19T14:25:09Z",
                "2026-02-19T17:25:09Z",
                "2026-02-19T20:25:09Z",
            ],
        ),
        (
            "rate(1 minute)",
            "UTC",
            2,
            vec!["2026-02-19T11:26:09Z", "2026-02-19T11:27:09Z"],
        ),
        ("rate(1 day)", "UTC", 1, vec!["2026-02-20T11:25:09Z"]),
        (
            "cron(0/15 * * * ? *)",
            "UTC",
            3,
            vec![
                "2026-02-19T11:30:00Z",
                "2026-02-19T11:45:00Z",
                "2026-02-19T12:00:00Z",
            ],
        ),
        (
            "cron(0 10 * * ? *)",
            "UTC",
            2,
            vec!["2026-02-20T10:00:00Z", "2026-02-21T10:00:00Z"],
        ),
        (
            "cron(15 12 L * ? *)",
            "UTC",
            3,
            vec![
                "2026-02-28T12:15:00Z",
                "2026-03-31T12:15:00Z",
                "2026-04-30T12:15:00Z",
            ],
        ),
        (
            "cron(0 8 LW * ? *)",
            "UTC",
            3,
            vec![
                "2026-02-27T08:00:00Z",
                "2026-03-31T08:00:00Z",
                "2026-04-30T08:00:00Z",
            ],
        ),
        (
            "cron(0 9 1W * ? *)",
            "UTC",
            3,
            vec![
                "2026-03-02T09:00:00Z",
                "2026-04-01T09:00:00Z",
                "2026-05-01T09:00:00Z",
            ],
        ),
        (
            "cron(0 9 1W AUG ? *)",
            "UTC",
            1,
            vec!["2026-08-03T09:00:00Z"],
        ),
        (
            "cron(0 18 ? * MON-FRI *)",
            "UTC",
            3,
            vec![
                "2026-02-19T18:00:00Z",
                "2026-02-20T18:00:00Z",
                "2026-02-23T18:00:00Z",
            ],
        ),
        (
            "cron(0 12 ? * 6#3 *)",
            "UTC",
            2,
            vec!["2026-02-20T12:00:00Z", "2026-03-20T12:00:00Z"],
        ),
        (
            "cron(0 12 ? * 2L *)",
            "UTC",
            2,
            vec!["2026-02-23T12:00:00Z", "2026-03-30T12:00:00Z"],
        ),
        ("cron(0 12 ? * L *)", "UTC", 1, vec!["2026-02-21T12:00:00Z"]),
        (
            "cron(0 0 ? * FRI-MON *)",
            "UTC",
            5,
            vec![
                "2026-02-20T00:00:00Z",
                "2026-02-21T00:00:00Z",
                "2026-02-22T00:00:00Z",
                "2026-02-23T00:00:00Z",
                "2026-02-27T00:00:00Z",
            ],
        ),
        (
            "cron(0 0 1 JAN ? 2028-2030)",
            "UTC",
            5,
            vec![
                "2028-01-01T00:00:00Z",
                "2029-01-01T00:00:00Z",
                "2030-01-01T00:00:00Z",
            ],
        ),
        (
            "cron(30 23 29 FEB ? *)",
            "UTC",
            1,
            vec!["2028-02-29T23:30:00Z"],
        ),
        (
            "cron(5,35 14 * JAN,FEB ? 2026)",
            "UTC",
            3,
            vec![
                "2026-02-19T14:05:00Z",
                "2026-02-19T14:35:00Z",
                "2026-02-20T14:05:00Z",
            ],
        ),
        ("cron(0 0 1 1 ? 1999)", "UTC", 1, vec![]),
        (
            "at(2026-03-01T09:00:00)",
            "UTC",
            3,
            vec!["2026-03-01T09:00:00Z"],
        ),
        ("at(2026-01-01T09:00:00)", "UTC", 1, vec![]),
        (
            "cron(0 9 * * ? *)",
            "America/New_York",
            2,
            vec!["2026-02-19T14:00:00Z", "2026-02-20T14:00:00Z"],
        ),
        (
            "at(2026-07-01T09:00:00)",
            "Europe/Dublin",
            1,
            vec!["2026-07-01T08:00:00Z"],
        ),
    ];
    for (expr, tz, count, want) in table {
        let s = Schedule::parse(expr)
            .and_then(|s| s.in_timezone(tz))
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(fmt(s.next_firings(t(AFTER), count)), want, "{expr} in {tz}");
    }
}

#[test]
fn daylight_saving_gaps_are_skipped_and_offsets_follow_the_zone() {
    let s = Schedule::parse("cron(30 1 * * ? *)")
        .and_then(|s| s.in_timezone("Europe/Dublin"))
        .expect("parses");
    // 2026-03-29 01:30 does not exist in Dublin (clocks jump 01:00 → 02:00).
    assert_eq!(
        fmt(s.next_firings(t("2026-03-28T12:00:00Z"), 2)),
        ["2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]
    );
    let s = Schedule::parse("cron(0 9 * * ? *)")
        .and_then(|s| s.in_timezone("Europe/Dublin"))
        .expect("parses");
    assert_eq!(
        fmt(s.next_firings(t("2026-03-27T12:00:00Z"), 4)),
        [
            "2026-03-28T09:00:00Z",
            "2026-03-29T08:00:00Z",
            "2026-03-30T08:00:00Z",
            "2026-03-31T08:00:00Z"
        ]
    );
}

#[test]
fn bad_expressions_are_rejected_with_the_field_named() {
    let cases = [
        (
            "cron(0 0 32 * ? *)",
            "cron field 3 (day-of-month): \"32\" is out of range 1-31",
        ),
        (
            "cron(60 * * * ? *)",
            "cron field 1 (minutes): \"60\" is out of range 0-59",
        ),
        (
            "cron(0 24 * * ? *)",
            "cron field 2 (hours): \"24\" is out of range 0-23",
        ),
        (
            "cron(0 0 1 FOO ? *)",
            "cron field 4 (month): \"FOO\" is not a number or name",
        ),
        (
            "cron(0 0 ? * 8 *)",
            "cron field 5 (day-of-week): \"8\" is out of range 1-7",
        ),
        (
            "cron(0 0 1 * ? 2200)",
            "cron field 6 (year): \"2200\" is out of range 1970-2199",
        ),
        (
            "cron(0 0 1 * ? 1969)",
            "cron field 6 (year): \"1969\" is out of range 1970-2199",
        ),
        (
            "cron(0 0 * * * *)",
            "cron field 5 (day-of-week): \"*\" must be '?' when day-of-month is given",
        ),
        (
            "cron(0 0 ? * ? *)",
            "cron field 5 (day-of-week): \"?\" cannot be '?'",
        ),
        (
            "cron(0 0 ? * 2#6 *)",
            "cron field 5 (day-of-week): \"2#6\" needs an occurrence 1-5",
        ),
        (
            "cron(0/0 0 * * ? *)",
            "cron field 1 (minutes): \"0/0\" has a step",
        ),
        (
            "cron(30-10 0 * * ? *)",
            "cron field 1 (minutes): \"30-10\" is a range that runs backwards",
        ),
        (
            "cron(? 0 * * ? *)",
            "cron field 1 (minutes): \"?\" '?' is only allowed",
        ),
        ("cron(0 0 1 * ?)", "expected 6 fields"),
        (
            "rate(1 minutes)",
            "use \"minute\" (singular) for a value of 1",
        ),
        (
            "rate(5 minute)",
            "use \"minutes\" (plural) for a value other than 1",
        ),
        ("rate(0 minutes)", "\"0\" is not a positive integer"),
        ("rate(-1 hours)", "\"-1\" is not a positive integer"),
        ("rate(2 weeks)", "unknown unit \"weeks\""),
        ("rate(5)", "expected rate(value unit)"),
        ("at(2026-13-01T00:00:00)", "expected yyyy-mm-ddThh:mm:ss"),
        (
            "every 5 minutes",
            "expected rate(value unit), cron(6 fields) or at(",
        ),
    ];
    for (expr, want) in cases {
        match Schedule::parse(expr) {
            Ok(_) => panic!("{expr} accepted"),
            Err(e) => assert!(e.to_string().contains(want), "{expr}: {e}"),
        }
    }
    let cfg = ScheduleConfig {
        timezone: "Mars/Olympus".into(),
        ..ScheduleConfig::default()
    };
    assert!(
        cfg.build()
            .is_err_and(|e| e.to_string().contains("Mars/Olympus"))
    );
    let toml_like: Result<ScheduleConfig, _> =
        serde_json::from_value(json!({"expression": "rate(1 hour)", "colour": "x"}));
    assert!(toml_like.is_err(), "unknown config keys are rejected");
}

#[test]
fn scheduled_event_matches_eventbridge_shape() {
    let s = ScheduleConfig::default().build().expect("default config");
    let e = s.event(t("2026-02-19T12:00:00Z"));
    assert_eq!(e["version"], "0");
    assert_eq!(e["detail-type"], "Scheduled Event");
    assert_eq!(e["source"], "aws.events");
    assert_eq!(e["account"], "190517931751");
    assert_eq!(e["region"], "eu-west-1");
    assert_eq!(e["time"], "2026-02-19T12:00:00Z");
    assert_eq!(
        e["resources"],
        json!(["arn:aws:events:eu-west-1:190517931751:rule/InfraMonitoring-Trigger"])
    );
    assert_eq!(e["detail"], json!({}));
    assert_eq!(e["id"].as_str().map(str::len), Some(36));
}

#[tokio::test]
async fn scheduler_fires_on_the_virtual_clock_and_stops() {
    let clock = Arc::new(VirtualClock::at("2026-02-19T00:00:00Z").expect("timestamp"));
    let s = Schedule::parse("rate(3 hours)").expect("parses");
    let sched = Scheduler::new(s, clock.clone());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let fired = sched
        .run(8, |_, event| {
            let seen = seen.clone();
            async move {
                if let Ok(mut s) = seen.lock() {
                    s.push(event["time"].as_str().unwrap_or_default().to_string());
                }
            }
        })
        .await;
    assert_eq!(fired.len(), 8, "8 executions per day, as in the seed");
    assert_eq!(
        seen.lock()
            .map(|s| s.first().cloned())
            .ok()
            .flatten()
            .as_deref(),
        Some("2026-02-19T03:00:00Z")
    );
    assert_eq!(
        seen.lock()
            .map(|s| s.last().cloned())
            .ok()
            .flatten()
            .as_deref(),
        Some("2026-02-20T00:00:00Z")
    );
    assert_eq!(clock.now_ms(), t("2026-02-20T00:00:00Z").timestamp_millis());

    let stopper = Scheduler::new(
        Schedule::parse("rate(1 minute)").expect("parses"),
        clock.clone(),
    );
    let handle = stopper.stop_handle();
    let mut n = 0;
    let fired = stopper
        .run(100, |_, _| {
            n += 1;
            if n == 2 {
                handle.stop();
            }
            async {}
        })
        .await;
    assert_eq!(fired.len(), 2);

    let past = Scheduler::new(
        Schedule::parse("at(2020-01-01T00:00:00)").expect("parses"),
        clock,
    );
    assert!(past.run(5, |_, _| async {}).await.is_empty());
}
