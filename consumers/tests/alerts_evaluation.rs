//! Alarm evaluation on its own: statistics, operators, long gaps, and independence from how
//! often evaluation runs.

use shardline_consumers::sinks::alerts::alarm::Transition;
use shardline_consumers::sinks::alerts::{
    AlarmRecord, AlarmRule, AlarmState, ComparisonOperator, Statistic, TreatMissingData,
};
use shardline_core::{MetricType, ShardId};

const T0_MS: i64 = 1_771_500_000_000;
const MIN: i64 = 60_000;

fn rule(
    statistic: Statistic,
    op: ComparisonOperator,
    m: u32,
    n: u32,
    treat: TreatMissingData,
) -> AlarmRule {
    AlarmRule {
        statistic,
        comparison_operator: op,
        datapoints_to_alarm: m,
        evaluation_periods: n,
        treat_missing_data: treat,
        ..AlarmRule::new(MetricType::CpuUtilization, 80.0)
    }
}

fn alarm(rule: &AlarmRule) -> AlarmRecord {
    AlarmRecord::new(rule, "i-1", "eu-west-1", ShardId(0), T0_MS)
}

#[test]
fn each_statistic_and_operator_decides_as_cloudwatch_names_it() {
    use ComparisonOperator::*;
    let cases = [
        (Statistic::Average, GreaterThanThreshold, AlarmState::Alarm), // 82.5 > 80
        (Statistic::Maximum, GreaterThanThreshold, AlarmState::Alarm), // 95
        (Statistic::Minimum, GreaterThanThreshold, AlarmState::Ok),    // 70
        (Statistic::Sum, GreaterThanThreshold, AlarmState::Alarm),     // 165
        (Statistic::SampleCount, GreaterThanThreshold, AlarmState::Ok), // 2
        (Statistic::Minimum, LessThanThreshold, AlarmState::Alarm),    // 70 < 80
        (
            Statistic::Maximum,
            LessThanOrEqualToThreshold,
            AlarmState::Ok,
        ),
        (
            Statistic::Average,
            GreaterThanOrEqualToThreshold,
            AlarmState::Alarm,
        ),
    ];
    for (statistic, op, want) in cases {
        let r = rule(statistic, op, 1, 1, TreatMissingData::Missing);
        let mut a = alarm(&r);
        assert!(a.add_sample(&r, T0_MS + 1_000, 70.0));
        assert!(a.add_sample(&r, T0_MS + 2_000, 95.0));
        let t = a.advance(&r, T0_MS + MIN);
        assert_eq!(a.state, want, "{statistic:?} {op:?}");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].from, AlarmState::InsufficientData);
        assert_eq!(t[0].period_end_ms, T0_MS + MIN);
    }
}

#[test]
fn a_period_closes_only_once_its_end_is_reached() {
    let r = rule(
        Statistic::Maximum,
        ComparisonOperator::GreaterThanThreshold,
        1,
        1,
        TreatMissingData::Missing,
    );
    let mut a = alarm(&r);
    a.add_sample(&r, T0_MS + 59_999, 99.0);
    assert!(a.advance(&r, T0_MS + MIN - 1).is_empty());
    assert_eq!(a.state, AlarmState::InsufficientData);
    assert_eq!(a.advance(&r, T0_MS + MIN).len(), 1);
    assert_eq!(a.state, AlarmState::Alarm);
    assert!(
        !a.add_sample(&r, T0_MS + 30_000, 1.0),
        "late sample refused"
    );
}

#[test]
fn a_gap_of_a_billion_periods_is_evaluated_without_walking_it() {
    for (treat, during_gap) in [
        (TreatMissingData::Missing, AlarmState::InsufficientData),
        (TreatMissingData::Ignore, AlarmState::Alarm),
        (TreatMissingData::Breaching, AlarmState::Alarm),
        (TreatMissingData::NotBreaching, AlarmState::Ok),
    ] {
        let r = rule(
            Statistic::Maximum,
            ComparisonOperator::GreaterThanThreshold,
            2,
            3,
            treat,
        );
        let mut a = alarm(&r);
        for m in 0..3 {
            a.add_sample(&r, T0_MS + m * MIN, 95.0);
        }
        let gap = 1_000_000_000 * MIN;
        a.add_sample(&r, T0_MS + gap, 10.0);
        a.add_sample(&r, T0_MS + gap + MIN, 10.0);
        let mid = a.advance(&r, T0_MS + gap);
        assert_eq!(a.state, during_gap, "{treat:?}");
        assert_eq!(a.next_period_start_ms, T0_MS + gap, "{treat:?}");
        assert!(mid.len() <= 2, "{treat:?}: {mid:?}");
        a.advance(&r, T0_MS + gap + 2 * MIN);
        assert_eq!(a.state, AlarmState::Ok, "{treat:?}");
        assert_eq!(a.last_value, Some(10.0));
    }
}

/// A small deterministic generator (no dependency needed for a fixed script).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[test]
fn transitions_do_not_depend_on_how_often_evaluation_runs() {
    let mut rng = Lcg(7);
    for round in 0..40 {
        let n = 1 + (rng.next() % 4) as u32;
        let m = 1 + (rng.next() % u64::from(n)) as u32;
        let treat = [
            TreatMissingData::Missing,
            TreatMissingData::Ignore,
            TreatMissingData::Breaching,
            TreatMissingData::NotBreaching,
        ][(rng.next() % 4) as usize];
        let r = rule(
            Statistic::Average,
            ComparisonOperator::GreaterThanThreshold,
            m,
            n,
            treat,
        );
        // 60 minutes, each empty (30%), fine or breaching; up to 3 samples a minute.
        let mut samples = vec![(T0_MS + 10_000, 50.0)];
        for minute in 1..60 {
            if rng.next() % 10 < 3 {
                continue;
            }
            for k in 0..=(rng.next() % 3) as i64 {
                let v = (rng.next() % 100) as f64;
                samples.push((T0_MS + minute * MIN + k * 15_000, v));
            }
        }
        let end = T0_MS + 61 * MIN;
        // Once at the end, after every minute, and after every sample.
        let mut once = alarm(&r);
        for (t, v) in &samples {
            once.add_sample(&r, *t, *v);
        }
        let all_at_end = once.advance(&r, end);
        let mut stepped = alarm(&r);
        let mut by_minute: Vec<Transition> = Vec::new();
        let mut by_sample: Vec<Transition> = Vec::new();
        let mut eager = alarm(&r);
        for (t, v) in &samples {
            eager.add_sample(&r, *t, *v);
            by_sample.extend(eager.advance(&r, *t));
        }
        by_sample.extend(eager.advance(&r, end));
        let mut i = 0;
        let mut bound = T0_MS;
        while bound <= end {
            while i < samples.len() && samples[i].0 < bound + MIN {
                stepped.add_sample(&r, samples[i].0, samples[i].1);
                i += 1;
            }
            by_minute.extend(stepped.advance(&r, bound));
            bound += MIN;
        }
        assert_eq!(
            by_minute, all_at_end,
            "round {round}: {m} of {n}, {treat:?}"
        );
        assert_eq!(
            by_sample, all_at_end,
            "round {round}: {m} of {n}, {treat:?}"
        );
        assert_eq!(stepped.state, once.state);
        assert_eq!(eager.state, once.state);
    }
}
