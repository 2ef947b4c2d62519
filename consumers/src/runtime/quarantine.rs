//! Setting aside a record that makes the sink panic, as Lambda's BisectBatchOnFunctionError
//! and MaximumRetryAttempts do for a function error.
//!
//! When the sink panics while it holds a shard's records ([`InFlight::Write`]), the
//! [`Supervisor`](super::Supervisor) notes those records as the shard's *suspect* range and
//! restarts the consumer from its checkpoint. The consumer then hands the records of that range
//! to the sink in pieces of half the panicking write's size; a panic inside the range narrows
//! it to the piece that panicked and halves the piece size again. A 1,000-record batch comes
//! down to the one record that panics in ten restarts; the pieces that pass are delivered and
//! checkpointed as usual. Once that record alone has made the sink panic `panic_attempts`
//! times ([`ConsumerConfig::panic_attempts`](super::ConsumerConfig::panic_attempts)), the
//! consumer stores it in the dead-letter store, with a reason naming the panic, instead of
//! handing it to the sink, and reads on.
//!
//! Invariants:
//! - at most one suspect per shard: a panic replaces the shard's suspect with the records of
//!   the write that panicked (a panic elsewhere in the shard starts the search over);
//! - a suspect changes how the records of its range are grouped into writes, never which are
//!   delivered, except the condemned record, which goes to the dead-letter store, never away;
//! - a suspect is forgotten once a write reaching past its range succeeded or its record was
//!   dead-lettered;
//! - the quarantine lives in memory beside the supervisor: after a process restart a poison
//!   record is isolated again from the start.
//!
//! [`InFlight::Write`]: super::status::InFlight::Write

use shardline_core::{SequenceNumber, ShardId};
use std::collections::BTreeMap;

use crate::SinkRecord;

/// The smallest run of one shard's records known to make the sink panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Suspect {
    /// The run's first record.
    pub first: SequenceNumber,
    /// The run's last record.
    pub last: SequenceNumber,
    /// Records per write inside the run.
    pub piece: usize,
    /// Panics with the run down to its one record.
    pub alone: u32,
    /// The last panic's message.
    pub message: String,
}

impl Suspect {
    /// Whether its one record has made the sink panic `attempts` times alone.
    pub fn condemned(&self, attempts: u32) -> bool {
        self.first == self.last && self.alone >= attempts
    }
}

/// The suspects of every shard of one consumer.
#[derive(Debug, Default)]
pub(crate) struct Quarantine {
    suspects: BTreeMap<ShardId, Suspect>,
}

impl Quarantine {
    /// Notes that the sink panicked with `message` while writing `records` records of `shard`,
    /// `first..=last`. Returns the shard's suspect as it is now.
    pub fn note_panic(
        &mut self,
        shard: ShardId,
        first: SequenceNumber,
        last: SequenceNumber,
        records: usize,
        message: String,
    ) -> Suspect {
        let alone = match self.suspects.get(&shard) {
            Some(s) if records == 1 && s.first == first && s.last == last => s.alone + 1,
            _ if records == 1 => 1,
            _ => 0,
        };
        let suspect = Suspect {
            first,
            last,
            piece: (records / 2).max(1),
            alone,
            message,
        };
        self.suspects.insert(shard, suspect.clone());
        suspect
    }

    /// The shard's suspect, if any.
    pub fn suspect(&self, shard: ShardId) -> Option<&Suspect> {
        self.suspects.get(&shard)
    }

    /// Forgets the shard's suspect once `upto` (a record delivered or dead-lettered) reached
    /// the end of its range.
    pub fn passed(&mut self, shard: ShardId, upto: &SequenceNumber) {
        if self.suspects.get(&shard).is_some_and(|s| s.last <= *upto) {
            self.suspects.remove(&shard);
        }
    }
}

/// One step of handing a shard's valid records on.
#[derive(Debug, PartialEq)]
pub(crate) enum Piece<'a> {
    /// Write these records to the sink in one call.
    Write(&'a [SinkRecord]),
    /// Dead-letter this record instead of writing it.
    Condemn(&'a SinkRecord),
}

/// Splits `valid` (one shard's records in sequence order) into the writes and dead letters
/// that `suspect` asks for: one write when there is none, or when the records miss its range.
pub(crate) fn pieces<'a>(
    valid: &'a [SinkRecord],
    suspect: Option<&Suspect>,
    panic_attempts: u32,
) -> Vec<Piece<'a>> {
    let Some(s) = suspect else {
        return vec![Piece::Write(valid)];
    };
    let start = valid.partition_point(|r| r.sequence_number < s.first);
    let end = valid.partition_point(|r| r.sequence_number <= s.last);
    if start == end {
        return vec![Piece::Write(valid)];
    }
    let mut out = Vec::new();
    if start > 0 {
        out.push(Piece::Write(&valid[..start]));
    }
    let inside = &valid[start..end];
    if s.condemned(panic_attempts) {
        // The range is one record: the one condemned.
        out.extend(inside.iter().map(Piece::Condemn));
    } else {
        out.extend(inside.chunks(s.piece.max(1)).map(Piece::Write));
    }
    if end < valid.len() {
        out.push(Piece::Write(&valid[end..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::{MetricEvent, MetricType};
    use std::sync::Arc;

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber::try_from(n.to_string()).expect("decimal")
    }

    fn records(range: std::ops::RangeInclusive<u64>) -> Vec<SinkRecord> {
        range
            .map(|n| SinkRecord {
                shard: ShardId(0),
                sequence_number: seq(n),
                arrival_ms: 0,
                event: Arc::new(MetricEvent {
                    metric_id: format!("cpu-{n}"),
                    metric_type: MetricType::CpuUtilization,
                    timestamp: 1,
                    timestamp_ms: None,
                    value: 1.0,
                    unit: None,
                    instance_id: "i-000001".into(),
                    region: "eu-west-1".into(),
                    collected_at: "c".into(),
                }),
            })
            .collect()
    }

    fn shape(pieces: &[Piece<'_>]) -> Vec<String> {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Write(r) => format!(
                    "w{}-{}",
                    r[0].sequence_number,
                    r[r.len() - 1].sequence_number
                ),
                Piece::Condemn(r) => format!("x{}", r.sequence_number),
            })
            .collect()
    }

    /// Drives the halving as the supervisor and the consumer do, with the sink panicking on
    /// `poison`: returns the restarts (panics) it took and what was delivered.
    fn isolate(batch: &[SinkRecord], poison: u64, attempts: u32) -> (u32, Vec<String>) {
        let mut q = Quarantine::default();
        let mut panics = 0;
        let mut from = 0; // index of the first record not yet handed on (the checkpoint)
        let mut done = Vec::new();
        'restart: loop {
            assert!(panics < 100, "the search does not end");
            for piece in pieces(&batch[from..], q.suspect(ShardId(0)), attempts) {
                match piece {
                    Piece::Write(r) => {
                        if r.iter().any(|x| x.sequence_number == seq(poison)) {
                            panics += 1;
                            q.note_panic(
                                ShardId(0),
                                r[0].sequence_number.clone(),
                                r[r.len() - 1].sequence_number.clone(),
                                r.len(),
                                "boom".into(),
                            );
                            continue 'restart;
                        }
                        from += r.len();
                        done.push(shape(&[Piece::Write(r)]).remove(0));
                        q.passed(ShardId(0), &r[r.len() - 1].sequence_number);
                    }
                    Piece::Condemn(r) => {
                        from += 1;
                        done.push(format!("x{}", r.sequence_number));
                        q.passed(ShardId(0), &r.sequence_number);
                    }
                }
            }
            return (panics, done);
        }
    }

    #[test]
    fn halving_finds_the_record_and_condemns_it_after_the_attempts() {
        let batch = records(1..=1000);
        let (panics, done) = isolate(&batch, 737, 3);
        // log2(1000) rounded up halvings, then 3 panics alone.
        assert!(panics <= 10 + 3, "{panics} panics");
        assert!(done.contains(&"x737".to_string()), "{done:?}");
        let written: u64 = done
            .iter()
            .filter_map(|p| p.strip_prefix('w'))
            .map(|p| {
                let (a, b) = p.split_once('-').expect("range");
                b.parse::<u64>().expect("n") - a.parse::<u64>().expect("n") + 1
            })
            .sum();
        assert_eq!(written, 999, "every other record delivered once: {done:?}");
        let (panics, done) = isolate(&records(5..=5), 5, 2);
        assert_eq!((panics, done), (2, vec!["x5".to_string()]));
    }

    #[test]
    fn pieces_group_only_the_suspect_range() {
        let batch = records(1..=10);
        assert_eq!(shape(&pieces(&batch, None, 3)), ["w1-10"]);
        let mut s = Suspect {
            first: seq(3),
            last: seq(8),
            piece: 2,
            alone: 0,
            message: "m".into(),
        };
        assert_eq!(
            shape(&pieces(&batch, Some(&s), 3)),
            ["w1-2", "w3-4", "w5-6", "w7-8", "w9-10"]
        );
        s.first = seq(20);
        s.last = seq(30);
        assert_eq!(shape(&pieces(&batch, Some(&s), 3)), ["w1-10"], "no overlap");
        let one = Suspect {
            first: seq(4),
            last: seq(4),
            piece: 1,
            alone: 3,
            message: "m".into(),
        };
        assert_eq!(
            shape(&pieces(&batch, Some(&one), 3)),
            ["w1-3", "x4", "w5-10"]
        );
        assert_eq!(
            shape(&pieces(&batch, Some(&one), 4)),
            ["w1-3", "w4-4", "w5-10"],
            "not yet condemned"
        );
    }

    #[test]
    fn a_panic_alone_counts_only_for_the_same_record() {
        let mut q = Quarantine::default();
        let s = q.note_panic(ShardId(1), seq(1), seq(8), 8, "a".into());
        assert_eq!((s.piece, s.alone), (4, 0));
        let s = q.note_panic(ShardId(1), seq(5), seq(5), 1, "b".into());
        assert_eq!((s.piece, s.alone), (1, 1));
        let s = q.note_panic(ShardId(1), seq(5), seq(5), 1, "c".into());
        assert_eq!((s.alone, s.message.as_str()), (2, "c"));
        let s = q.note_panic(ShardId(1), seq(6), seq(6), 1, "d".into());
        assert_eq!(s.alone, 1, "another record starts over");
        q.passed(ShardId(1), &seq(5));
        assert!(q.suspect(ShardId(1)).is_some(), "not past 6 yet");
        q.passed(ShardId(1), &seq(6));
        assert!(q.suspect(ShardId(1)).is_none());
    }
}
