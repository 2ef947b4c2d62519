//! The notification of a transition: subject, message, attributes and deduplication id.
//!
//! - Subject (at most 100 characters, SNS's limit): `ALARM: "cpu_utilization > 80" on i-123456`.
//! - Message: instance, region, metric, statistic value, threshold, the time of the transition
//!   (end of the deciding period), and how many of the last N periods breached (M of N).
//! - Deduplication id: `<namespace>/<alarm>/<instance>/<period end ms>/<new state>`, the same
//!   for every evaluation of the same transition, so re-deliveries after a crash notify once.

use shardline_core::ports::Notification;
use shardline_core::time::format_rfc3339_ms;
use std::collections::BTreeMap;

use super::alarm::{AlarmRecord, Transition};
use super::config::AlarmRule;

/// SNS's subject limit.
pub const MAX_SUBJECT_CHARS: usize = 100;

/// The subject line, cut to [`MAX_SUBJECT_CHARS`] characters.
pub fn subject(alarm: &AlarmRecord, t: &Transition) -> String {
    let full = format!("{}: \"{}\" on {}", t.to, alarm.rule, alarm.instance_id);
    if full.chars().count() <= MAX_SUBJECT_CHARS {
        full
    } else {
        let mut cut: String = full.chars().take(MAX_SUBJECT_CHARS - 3).collect();
        cut.push_str("...");
        cut
    }
}

/// The deterministic id of a transition.
pub fn deduplication_id(namespace: &str, alarm: &AlarmRecord, t: &Transition) -> String {
    format!(
        "{namespace}/{}/{}/{}/{}",
        alarm.rule, alarm.instance_id, t.period_end_ms, t.to
    )
}

/// The notification for one transition of `alarm`.
pub fn notification(
    topic: &str,
    namespace: &str,
    rule: &AlarmRule,
    alarm: &AlarmRecord,
    t: &Transition,
) -> Notification {
    let unit = rule.metric.unit();
    let value = t
        .value
        .map_or_else(|| "no data".to_string(), |v| format!("{v} {unit}"));
    let period_secs = rule.period.as_secs();
    let message = format!(
        "Alarm \"{name}\" on instance {instance} ({region}) changed from {from} to {to} at {at}.\n\
         Metric: {metric} ({statistic} over {period_secs}s periods), latest value {value}.\n\
         Threshold: {op} {threshold} {unit}.\n\
         Reason: {breaching} of the last {evaluated} evaluated periods breached the threshold; \
         the alarm fires at {m} of {n} (missing data treated as {missing:?}).",
        name = alarm.rule,
        instance = alarm.instance_id,
        region = alarm.region,
        from = t.from,
        to = t.to,
        at = format_rfc3339_ms(t.period_end_ms),
        metric = rule.metric,
        statistic = rule.statistic,
        op = rule.comparison_operator.symbol(),
        threshold = rule.threshold,
        breaching = t.breaching,
        evaluated = t.evaluated,
        m = rule.datapoints_to_alarm,
        n = rule.evaluation_periods,
        missing = rule.treat_missing_data,
    );
    let attributes = BTreeMap::from([
        ("AlarmName".to_string(), alarm.rule.clone()),
        ("NewStateValue".to_string(), t.to.to_string()),
        ("OldStateValue".to_string(), t.from.to_string()),
        ("MetricName".to_string(), rule.metric.to_string()),
        ("InstanceID".to_string(), alarm.instance_id.clone()),
        ("Region".to_string(), alarm.region.clone()),
        (
            "StateChangeTime".to_string(),
            format_rfc3339_ms(t.period_end_ms),
        ),
    ]);
    Notification {
        topic: topic.to_string(),
        subject: subject(alarm, t),
        message,
        attributes,
        deduplication_id: Some(deduplication_id(namespace, alarm, t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::alerts::alarm::AlarmState;
    use shardline_core::{MetricType, ShardId};

    #[test]
    fn subject_names_state_alarm_and_instance_within_100_chars() {
        let rule = AlarmRule::new(MetricType::CpuUtilization, 80.0);
        let alarm = AlarmRecord::new(&rule, "i-123456", "eu-west-1", ShardId(0), 60_000);
        let t = Transition {
            from: AlarmState::Ok,
            to: AlarmState::Alarm,
            period_end_ms: 120_000,
            value: Some(91.5),
            breaching: 1,
            evaluated: 1,
        };
        assert_eq!(
            subject(&alarm, &t),
            "ALARM: \"cpu_utilization > 80\" on i-123456"
        );
        let n = notification("topic", "alarms.alerts", &rule, &alarm, &t);
        assert!(n.message.contains("91.5 Percent"), "{}", n.message);
        assert!(n.message.contains("1 of the last 1"), "{}", n.message);
        assert_eq!(
            n.deduplication_id.as_deref(),
            Some("alarms.alerts/cpu_utilization > 80/i-123456/120000/ALARM")
        );
        let mut long = alarm.clone();
        long.instance_id = "i-".repeat(80);
        assert_eq!(subject(&long, &t).chars().count(), MAX_SUBJECT_CHARS);
    }
}
