//! One shard's read position and checkpoint bookkeeping.
//!
//! Invariant: the checkpoint target is the highest sequence number `s` such that every record
//! of the shard up to `s` is either durable in the sink or stored as a dead letter. The state
//! keeps, for each valid record handed to the sink and not yet reported durable, its sequence
//! number and the one processed just before it; the first such record bounds the target.

use shardline_core::{SequenceNumber, ShardId, ShardIterator};
use std::collections::VecDeque;

/// Read and checkpoint state of one shard.
#[derive(Debug)]
pub(crate) struct ShardState {
    /// Parent shards (split or merge): this shard is read only after they are finished.
    pub parents: Vec<ShardId>,
    /// The shard's last sequence number once it is closed.
    pub ending: Option<SequenceNumber>,
    /// Where the next read starts; `None` until resolved (or after the iterator was rejected).
    pub iterator: Option<ShardIterator>,
    /// The last record handed to the sink or the dead-letter store.
    pub processed: Option<SequenceNumber>,
    /// The last checkpoint written (or loaded).
    pub checkpointed: Option<SequenceNumber>,
    /// The backend reported the end of this closed shard.
    pub end_reached: bool,
    /// Closed, fully read, and checkpointed at its end.
    pub finished: bool,
    /// Records handed to the sink and not yet durable, as runs of records processed one
    /// after another (a dead letter ends a run), oldest first. A run costs the same whatever
    /// its length, so a sink that buffers a second of records does not make the runtime hold
    /// a sequence number per record.
    pending: VecDeque<Run>,
}

/// A run of records handed to the sink one after another, not yet durable.
///
/// Its undurable records are those with sequence numbers in `(before, last]` that are at or
/// after `first`. Sinks report durable marks that are sequence numbers of records they were
/// handed ([`crate::Sink::write`]), so a mark inside a run is the last durable record and
/// becomes `before`: the checkpoint while the rest of the run is undurable.
#[derive(Debug)]
struct Run {
    /// The run's first record.
    first: SequenceNumber,
    /// The record processed just before the run's first undurable one (none at the start).
    before: Option<SequenceNumber>,
    /// The run's last record.
    last: SequenceNumber,
}

impl ShardState {
    /// A shard resuming after `checkpoint` (or from the configured position when `None`).
    pub fn new(
        parents: Vec<ShardId>,
        ending: Option<SequenceNumber>,
        checkpoint: Option<SequenceNumber>,
    ) -> Self {
        let finished = matches!((&ending, &checkpoint), (Some(e), Some(c)) if c >= e);
        Self {
            parents,
            ending,
            iterator: None,
            processed: None,
            checkpointed: checkpoint,
            end_reached: finished,
            finished,
            pending: VecDeque::new(),
        }
    }

    /// Notes that a record was handed on: to the sink when `to_sink`, else dead-lettered.
    pub fn note_processed(&mut self, seq: SequenceNumber, to_sink: bool) {
        if to_sink {
            match self.pending.back_mut() {
                // The previous record went to the sink too: the run goes on.
                Some(run) if self.processed.as_ref() == Some(&run.last) => run.last = seq.clone(),
                _ => self.pending.push_back(Run {
                    first: seq.clone(),
                    before: self.processed.clone(),
                    last: seq.clone(),
                }),
            }
        }
        self.processed = Some(seq);
    }

    /// [`ShardState::note_processed`] for each of `records` in order (a sequence number and
    /// whether it went to the sink), copying only the sequence numbers that end a stretch.
    pub fn note_processed_all(&mut self, records: &[(SequenceNumber, bool)]) {
        let mut rest = records;
        while let Some(((first, to_sink), _)) = rest.split_first() {
            let stretch = rest.iter().take_while(|(_, ok)| ok == to_sink).count();
            let last = &rest[stretch - 1].0;
            if *to_sink {
                self.note_processed(first.clone(), true);
                if stretch > 1
                    && let Some(run) = self.pending.back_mut()
                {
                    run.last = last.clone();
                }
            }
            self.processed = Some(last.clone());
            rest = &rest[stretch..];
        }
    }

    /// Notes that the sink made everything up to `durable` durable.
    pub fn note_durable(&mut self, durable: &SequenceNumber) {
        while self.pending.front().is_some_and(|r| r.last <= *durable) {
            self.pending.pop_front();
        }
        if let Some(run) = self.pending.front_mut()
            && run.first <= *durable
            && run.before.as_ref().is_none_or(|b| b < durable)
        {
            run.before = Some(durable.clone());
        }
    }

    /// Whether every record handed to the sink is durable.
    pub fn all_durable(&self) -> bool {
        self.pending.is_empty()
    }

    /// The checkpoint to write now, if it moves past the last one.
    pub fn checkpoint_target(&self) -> Option<SequenceNumber> {
        let target = match self.pending.front() {
            Some(run) => run.before.clone(),
            None => self.processed.clone(),
        }?;
        match &self.checkpointed {
            Some(c) if *c >= target => None,
            _ => Some(target),
        }
    }

    /// Where to resume reading: after the last processed record, else after the checkpoint.
    pub fn resume_after(&self) -> Option<&SequenceNumber> {
        self.processed.as_ref().or(self.checkpointed.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber::try_from(n.to_string()).expect("decimal")
    }

    #[test]
    fn checkpoint_stops_before_the_first_undurable_record() {
        let mut s = ShardState::new(vec![], None, None);
        s.note_processed(seq(1), true);
        s.note_processed(seq(2), false); // dead-lettered
        s.note_processed(seq(3), true);
        s.note_processed(seq(4), false);
        assert_eq!(s.checkpoint_target(), None, "nothing durable yet");
        s.note_durable(&seq(1));
        assert_eq!(
            s.checkpoint_target(),
            Some(seq(2)),
            "the dead letter after 1 counts"
        );
        s.note_durable(&seq(3));
        assert_eq!(s.checkpoint_target(), Some(seq(4)));
        s.checkpointed = Some(seq(4));
        assert_eq!(s.checkpoint_target(), None);
        assert!(s.all_durable());
    }

    #[test]
    fn a_mark_inside_a_run_checkpoints_there_and_a_run_is_one_entry() {
        let mut s = ShardState::new(vec![], None, Some(seq(100)));
        for n in 101..=100_000 {
            s.note_processed(seq(n), true);
        }
        assert_eq!(s.pending.len(), 1, "one run however many records");
        assert_eq!(s.checkpoint_target(), None, "nothing durable yet");
        s.note_durable(&seq(50));
        assert_eq!(
            s.checkpoint_target(),
            None,
            "a mark before the run changes nothing"
        );
        s.note_durable(&seq(40_000));
        assert_eq!(s.checkpoint_target(), Some(seq(40_000)));
        s.note_durable(&seq(30_000));
        assert_eq!(
            s.checkpoint_target(),
            Some(seq(40_000)),
            "marks never move back"
        );
        s.note_processed(seq(100_001), false); // dead-lettered
        s.note_processed(seq(100_002), true);
        s.note_processed(seq(100_003), true);
        assert_eq!(s.pending.len(), 2, "a dead letter starts a new run");
        s.note_durable(&seq(100_000));
        assert_eq!(
            s.checkpoint_target(),
            Some(seq(100_001)),
            "the dead letter after the first run counts"
        );
        s.note_durable(&seq(100_002));
        assert_eq!(s.checkpoint_target(), Some(seq(100_002)));
        assert!(!s.all_durable());
        s.note_durable(&seq(100_003));
        assert!(s.all_durable());
        assert_eq!(s.checkpoint_target(), Some(seq(100_003)));
    }

    #[test]
    fn noting_a_batch_at_once_equals_noting_its_records_one_by_one() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for case in 0..500 {
            let mut one = ShardState::new(vec![], None, Some(seq(1)));
            let mut all = ShardState::new(vec![], None, Some(seq(1)));
            let mut next = 2;
            for _ in 0..rng.random_range(1..5) {
                let len = rng.random_range(0..40);
                // Mostly valid records with dead letters in stretches, as batches have.
                let bad = rng.random_range(0.0..0.5);
                let batch: Vec<(SequenceNumber, bool)> = (0..len)
                    .map(|i| (seq(next + i), !rng.random_bool(bad)))
                    .collect();
                next += len;
                for (s, ok) in &batch {
                    one.note_processed(s.clone(), *ok);
                }
                all.note_processed_all(&batch);
                assert_eq!(format!("{all:?}"), format!("{one:?}"), "case {case}");
                if rng.random_bool(0.5) {
                    let mark = seq(rng.random_range(1..next.max(2)));
                    one.note_durable(&mark);
                    all.note_durable(&mark);
                }
            }
            assert_eq!(all.checkpoint_target(), one.checkpoint_target());
        }
    }

    #[test]
    fn a_closed_shard_checkpointed_at_its_end_is_finished() {
        let s = ShardState::new(vec![], Some(seq(9)), Some(seq(9)));
        assert!(s.finished);
        let s = ShardState::new(vec![], Some(seq(9)), Some(seq(5)));
        assert!(!s.finished);
        assert_eq!(s.resume_after(), Some(&seq(5)));
    }
}
