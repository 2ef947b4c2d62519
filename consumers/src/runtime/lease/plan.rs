//! Deciding which leases a worker takes and which it lets go: expiry as one worker watched it
//! ([`Observer`]) and the fair share ([`plan`]).
//!
//! Rules (KCL's, with a cooperative hand-over instead of stealing):
//! - A lease is **finished** when its checkpoint is `SHARD_END`; nobody works on it.
//! - A lease is **available** when it is not finished and every parent shard's lease is
//!   finished or gone: a child shard starts only after its parents are done.
//! - A lease owned by another worker is **expired** when its counter has not moved for the
//!   failover time, as this worker watched it (no clocks are compared across machines).
//! - The fair share is `ceil(available / workers)`, where workers are the live workers (their
//!   heartbeats move) and at least every owner of a lease that is not expired.
//! - Below its share a worker takes free leases, then expired ones. Above it, it lets go of
//!   the excess (after a final checkpoint), so a worker that joins gets its share without
//!   taking a lease that someone is still writing for.
//! - A free lease nobody took for the failover time is taken by any worker, whatever its
//!   share: a heartbeat that moves without taking work cannot leave shards unread.

use shardline_core::ShardId;
use shardline_core::lease::{Lease, LeaseCheckpoint};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::time::Instant;

/// When each lease's counter (and owner) was last seen to change.
#[derive(Debug, Default)]
pub struct Observer {
    seen: HashMap<ShardId, Seen>,
}

#[derive(Debug)]
struct Seen {
    counter: u64,
    owner: Option<String>,
    since: Instant,
}

impl Observer {
    /// Notes the leases as listed at `now`.
    pub fn observe(&mut self, leases: &[Lease], now: Instant) {
        let listed: BTreeSet<ShardId> = leases.iter().map(|l| l.key.shard).collect();
        self.seen.retain(|shard, _| listed.contains(shard));
        for l in leases {
            let changed = self
                .seen
                .get(&l.key.shard)
                .is_none_or(|s| s.counter != l.lease_counter || s.owner != l.lease_owner);
            if changed {
                self.seen.insert(
                    l.key.shard,
                    Seen {
                        counter: l.lease_counter,
                        owner: l.lease_owner.clone(),
                        since: now,
                    },
                );
            }
        }
    }

    /// How long `shard`'s lease has been seen unchanged (zero if never seen).
    pub fn unchanged_for(&self, shard: ShardId, now: Instant) -> Duration {
        self.seen
            .get(&shard)
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s.since))
    }
}

/// What one planning round decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Leases to take, in order, with how long each was seen unchanged.
    pub take: Vec<(Lease, Duration)>,
    /// Held shards to let go of (after a final checkpoint).
    pub shed: Vec<ShardId>,
    /// The fair share this round.
    pub target: usize,
    /// Workers counted this round.
    pub workers: usize,
}

/// The inputs of [`plan`].
#[derive(Debug)]
pub struct Round<'a> {
    /// This worker.
    pub me: &'a str,
    /// Every lease of the consumer on the stream.
    pub leases: &'a [Lease],
    /// Live workers, this one included, as the heartbeats say.
    pub live_workers: usize,
    /// Shards this worker must not take now (lost, until its consumer restarted).
    pub blocked: &'a BTreeSet<ShardId>,
    /// The failover time.
    pub failover: Duration,
    /// The observer's view and the time of the listing.
    pub observer: &'a Observer,
    /// When the leases were listed.
    pub now: Instant,
}

fn finished(l: &Lease) -> bool {
    l.checkpoint == LeaseCheckpoint::ShardEnd
}

/// Whether the lease may be worked on: not finished, and every parent finished or gone.
pub fn available(l: &Lease, by_shard: &BTreeMap<ShardId, &Lease>) -> bool {
    !finished(l)
        && l.parent_shard_ids
            .iter()
            .all(|p| by_shard.get(p).is_none_or(|pl| finished(pl)))
}

/// Decides a worker's takes and releases for one round (see the module docs).
pub fn plan(r: &Round<'_>) -> Plan {
    let by_shard: BTreeMap<ShardId, &Lease> = r.leases.iter().map(|l| (l.key.shard, l)).collect();
    let unchanged = |l: &Lease| r.observer.unchanged_for(l.key.shard, r.now);
    let mut mine = Vec::new();
    let mut free = Vec::new();
    let mut expired = Vec::new();
    let mut busy_owners = BTreeSet::new();
    for l in r.leases.iter().filter(|l| available(l, &by_shard)) {
        match l.lease_owner.as_deref() {
            Some(o) if o == r.me => mine.push(l.key.shard),
            None => free.push(l),
            Some(o) => {
                if unchanged(l) >= r.failover {
                    expired.push(l);
                } else {
                    busy_owners.insert(o);
                }
            }
        }
    }
    let available_count = r.leases.iter().filter(|l| available(l, &by_shard)).count();
    let workers = r.live_workers.max(1 + busy_owners.len()).max(1);
    let target = available_count.div_ceil(workers);
    let mut out = Plan {
        target,
        workers,
        ..Plan::default()
    };
    if mine.len() > target {
        mine.sort();
        out.shed = mine.split_off(target);
        return out;
    }
    // Start at a place of our own among the candidates, so workers starting together try
    // different leases first.
    let offset =
        r.me.bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    let rotate = |v: &mut Vec<&Lease>| {
        v.sort_by_key(|l| l.key.shard);
        if !v.is_empty() {
            let n = v.len();
            v.rotate_left(offset % n);
        }
    };
    rotate(&mut free);
    rotate(&mut expired);
    let mut wanted = target - mine.len();
    for l in free.iter().chain(expired.iter()) {
        if r.blocked.contains(&l.key.shard) {
            continue;
        }
        let idle = unchanged(l);
        let unclaimed = l.lease_owner.is_none() && idle >= r.failover;
        if wanted > 0 || unclaimed {
            out.take.push(((*l).clone(), idle));
            wanted = wanted.saturating_sub(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::ports::CheckpointKey;

    fn lease(shard: u32, owner: Option<&str>, counter: u64) -> Lease {
        let mut l = Lease::new(
            CheckpointKey {
                consumer: "c".into(),
                stream: "s".into(),
                shard: ShardId(shard),
            },
            LeaseCheckpoint::TrimHorizon,
            vec![],
        );
        l.lease_owner = owner.map(str::to_string);
        l.lease_counter = counter;
        l
    }

    const FAILOVER: Duration = Duration::from_secs(10);

    fn round<'a>(
        me: &'a str,
        leases: &'a [Lease],
        live: usize,
        observer: &'a Observer,
        now: Instant,
        blocked: &'a BTreeSet<ShardId>,
    ) -> Plan {
        plan(&Round {
            me,
            leases,
            live_workers: live,
            blocked,
            failover: FAILOVER,
            observer,
            now,
        })
    }

    fn shards(take: &[(Lease, Duration)]) -> Vec<u32> {
        let mut v: Vec<u32> = take.iter().map(|(l, _)| l.key.shard.0).collect();
        v.sort();
        v
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_worker_takes_every_free_lease() {
        let leases: Vec<Lease> = (0..4).map(|s| lease(s, None, 1)).collect();
        let mut obs = Observer::default();
        let now = Instant::now();
        obs.observe(&leases, now);
        let p = round("a", &leases, 1, &obs, now, &BTreeSet::new());
        assert_eq!(shards(&p.take), vec![0, 1, 2, 3]);
        assert!(p.shed.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_live_worker_makes_the_first_let_go_of_half() {
        let leases: Vec<Lease> = (0..4).map(|s| lease(s, Some("a"), 5)).collect();
        let mut obs = Observer::default();
        let now = Instant::now();
        obs.observe(&leases, now);
        let none = BTreeSet::new();
        let a = round("a", &leases, 2, &obs, now, &none);
        assert_eq!(a.shed, vec![ShardId(2), ShardId(3)], "{a:?}");
        // b sees a's leases alive and none free: it waits for a to let go.
        let b = round("b", &leases, 2, &obs, now, &none);
        assert!(b.take.is_empty() && b.shed.is_empty(), "{b:?}");
        // Once a let go of two, b takes exactly those two.
        let mut after = leases.clone();
        after[2].lease_owner = None;
        after[3].lease_owner = None;
        obs.observe(&after, now);
        let b = round("b", &after, 2, &obs, now, &none);
        assert_eq!(shards(&b.take), vec![2, 3]);
        let a = round("a", &after, 2, &obs, now, &none);
        assert!(a.take.is_empty() && a.shed.is_empty(), "{a:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn leases_of_a_silent_worker_expire_after_the_failover_time() {
        let leases: Vec<Lease> = (0..4)
            .map(|s| lease(s, Some(if s < 2 { "a" } else { "b" }), 9))
            .collect();
        let mut obs = Observer::default();
        let start = Instant::now();
        obs.observe(&leases, start);
        let none = BTreeSet::new();
        // a's heartbeat stopped (only b is live), but a's leases are not expired yet.
        let b = round("b", &leases, 1, &obs, start, &none);
        assert!(b.take.is_empty(), "{b:?}");
        tokio::time::advance(FAILOVER - Duration::from_millis(1)).await;
        let b = round("b", &leases, 1, &obs, Instant::now(), &none);
        assert!(b.take.is_empty(), "not before the failover time: {b:?}");
        tokio::time::advance(Duration::from_millis(1)).await;
        // b's own leases moved (renewals); a's did not.
        let mut renewed = leases.clone();
        renewed[2].lease_counter += 1;
        renewed[3].lease_counter += 1;
        obs.observe(&renewed, Instant::now());
        let b = round("b", &renewed, 1, &obs, Instant::now(), &none);
        assert_eq!(shards(&b.take), vec![0, 1]);
        assert!(b.take.iter().all(|(_, idle)| *idle >= FAILOVER));
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_shard_waits_for_its_parents() {
        let mut leases: Vec<Lease> = (0..3).map(|s| lease(s, None, 1)).collect();
        leases[2].parent_shard_ids = vec![ShardId(0), ShardId(1)];
        let mut obs = Observer::default();
        let now = Instant::now();
        obs.observe(&leases, now);
        let none = BTreeSet::new();
        let p = round("a", &leases, 1, &obs, now, &none);
        assert_eq!(shards(&p.take), vec![0, 1], "the merged child waits");
        leases[0].checkpoint = LeaseCheckpoint::ShardEnd;
        let p = round("a", &leases, 1, &obs, now, &none);
        assert_eq!(shards(&p.take), vec![1], "one parent is not done yet");
        leases[1].checkpoint = LeaseCheckpoint::ShardEnd;
        let p = round("a", &leases, 1, &obs, now, &none);
        assert_eq!(shards(&p.take), vec![2], "both parents finished");
        // A parent whose lease is gone (trimmed) does not hold the child back.
        let only_child = vec![leases[2].clone()];
        let p = round("a", &only_child, 1, &obs, now, &none);
        assert_eq!(shards(&p.take), vec![2]);
    }

    #[tokio::test(start_paused = true)]
    async fn free_leases_nobody_takes_go_to_any_worker_and_lost_ones_wait() {
        let mut leases: Vec<Lease> = (0..4).map(|s| lease(s, Some("a"), 3)).collect();
        leases[3].lease_owner = None;
        let mut obs = Observer::default();
        let start = Instant::now();
        obs.observe(&leases, start);
        let none = BTreeSet::new();
        // Two live workers, a holds 3 > 2: it sheds one and does not take the free one.
        let a = round("a", &leases, 2, &obs, start, &none);
        assert_eq!(a.shed, vec![ShardId(2)]);
        assert!(a.take.is_empty());
        // The other live worker never takes it: after the failover time a takes it anyway.
        leases[2].lease_owner = None;
        obs.observe(&leases, start);
        tokio::time::advance(FAILOVER).await;
        let now = Instant::now();
        let mut moved = leases.clone();
        moved[0].lease_counter += 1;
        moved[1].lease_counter += 1;
        obs.observe(&moved, now);
        let a = round("a", &moved, 2, &obs, now, &none);
        assert_eq!(shards(&a.take), vec![2, 3]);
        let blocked = BTreeSet::from([ShardId(3)]);
        let a = round("a", &moved, 2, &obs, now, &blocked);
        assert_eq!(
            shards(&a.take),
            vec![2],
            "a lost shard is not taken back yet"
        );
    }
}
