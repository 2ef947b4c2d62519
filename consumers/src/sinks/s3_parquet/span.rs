//! What the sink knows about the stretch of each shard it was handed: the basis of the
//! manifest's merged ranges.
//!
//! The runtime reports every stretch of records it hands on ([`crate::Sink::handed`]): after
//! which record it starts and where it ends, dead letters included. While the reports follow
//! each other (each starts at or inside the stretch so far), every valid record of the stretch
//! was buffered, found covered, or committed, in sequence order. So when a flush commits, the
//! range from the stretch's start to the flush's last record holds no valid record outside a
//! committed object: the manifest gets that range (joining the ranges before it), not just the
//! flush's own first-to-last. And when nothing of the shard is buffered or under way, the
//! whole stretch so far is committed, trailing dead letters included.
//!
//! A report that does not follow (the runtime jumped ahead or back) starts a new stretch when
//! nothing of the shard is buffered or under way; otherwise the buffered records belong to the
//! old stretch and the span is broken: flushes then add only their own ranges until the shard
//! is quiet again.

use shardline_core::SequenceNumber;

use super::manifest::Start;

/// The stretch of one shard handed to this sink one report after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Span {
    /// Every valid record from `start` through `through` was buffered, found covered or
    /// committed.
    Open {
        /// Where the stretch starts.
        start: Start,
        /// Its last record so far.
        through: SequenceNumber,
    },
    /// A jump while records were buffered: no range beyond a flush's own is claimed.
    Broken,
}

impl Span {
    /// Notes a reported stretch `(after, first..=last]`. `quiet`: nothing of the shard is
    /// buffered or under way.
    pub(super) fn handed(
        span: &mut Option<Span>,
        after: Option<&SequenceNumber>,
        first: &SequenceNumber,
        last: &SequenceNumber,
        quiet: bool,
    ) {
        let fresh = || Span::Open {
            start: match after {
                Some(a) => Start::After(a.clone()),
                None => Start::At(first.clone()),
            },
            through: last.clone(),
        };
        match span {
            Some(Span::Open { start, through }) => {
                let follows = after.is_some_and(|a| {
                    let from = match start {
                        Start::At(s) | Start::After(s) => s,
                    };
                    *from <= *a && *a <= *through
                });
                if follows {
                    if last > through {
                        *through = last.clone();
                    }
                } else if quiet {
                    *span = Some(fresh());
                } else {
                    *span = Some(Span::Broken);
                }
            }
            // The first report comes right after the first write: whatever is buffered is
            // part of it.
            None => *span = Some(fresh()),
            Some(Span::Broken) if quiet => *span = Some(fresh()),
            Some(Span::Broken) => {}
        }
    }

    /// The start to give the range of a flush whose first record is `first`, when the
    /// stretch holds it.
    pub(super) fn claim(&self, first: &SequenceNumber) -> Option<Start> {
        match self {
            Span::Open { start, through } if first <= through => {
                let holds = match start {
                    Start::At(s) => s <= first,
                    Start::After(s) => s < first,
                };
                holds.then(|| start.clone())
            }
            _ => None,
        }
    }

    /// The whole stretch, when it is open.
    pub(super) fn open(&self) -> Option<(Start, SequenceNumber)> {
        match self {
            Span::Open { start, through } => Some((start.clone(), through.clone())),
            Span::Broken => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber::try_from(n.to_string()).expect("decimal")
    }

    #[test]
    fn reports_that_follow_extend_and_jumps_break_or_restart() {
        let mut span = None;
        Span::handed(&mut span, Some(&seq(10)), &seq(11), &seq(20), false);
        assert_eq!(
            span.as_ref().and_then(Span::open),
            Some((Start::After(seq(10)), seq(20)))
        );
        // A retry from inside the stretch (a restart from its checkpoint) follows.
        Span::handed(&mut span, Some(&seq(15)), &seq(16), &seq(30), false);
        assert_eq!(
            span.as_ref().and_then(Span::open),
            Some((Start::After(seq(10)), seq(30)))
        );
        assert_eq!(
            span.as_ref().and_then(|s| s.claim(&seq(25))),
            Some(Start::After(seq(10)))
        );
        assert_eq!(span.as_ref().and_then(|s| s.claim(&seq(31))), None);
        // A jump ahead with records buffered breaks the span; once quiet, a new one starts.
        Span::handed(&mut span, Some(&seq(50)), &seq(51), &seq(60), false);
        assert_eq!(span, Some(Span::Broken));
        assert_eq!(span.as_ref().and_then(|s| s.claim(&seq(51))), None);
        Span::handed(&mut span, Some(&seq(60)), &seq(61), &seq(70), true);
        assert_eq!(
            span.as_ref().and_then(Span::open),
            Some((Start::After(seq(60)), seq(70)))
        );
        // From a starting position (no record before), the stretch starts at its first.
        let mut fresh = None;
        Span::handed(&mut fresh, None, &seq(3), &seq(9), false);
        assert_eq!(
            fresh.as_ref().and_then(Span::open),
            Some((Start::At(seq(3)), seq(9)))
        );
    }
}
