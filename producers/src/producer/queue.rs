//! The records of one send waiting to be put, and how calls are cut from them.
//!
//! Invariants:
//! - in [`OrderingMode::PerKey`], each partition key has its own FIFO queue and a call takes at
//!   most the head of each queue, so a key's records are appended in input order even when
//!   some are retried;
//! - in [`OrderingMode::Unordered`], one FIFO queue holds everything; calls take from its front;
//! - a call never exceeds the record or byte limit; a retried record goes back to the front of
//!   its queue.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};

use crate::config::OrderingMode;

/// One record waiting to be appended.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub index: usize,
    pub key: String,
    pub data: Bytes,
    pub attempts: u32,
    queue: usize,
}

impl Pending {
    /// Bytes counted against the per-call limit: data plus partition key.
    pub fn size(&self) -> usize {
        self.data.len() + self.key.len()
    }
}

/// Queues of pending records and a rotation over the non-empty ones.
#[derive(Debug)]
pub(crate) struct SendQueue {
    queues: Vec<VecDeque<Pending>>,
    rotation: VecDeque<usize>,
    per_queue: usize,
    len: usize,
}

impl SendQueue {
    pub fn new(ordering: OrderingMode, records: Vec<(usize, String, Bytes)>) -> Self {
        let mut queues: Vec<VecDeque<Pending>> = Vec::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        let len = records.len();
        for (index, key, data) in records {
            let q = match ordering {
                OrderingMode::Unordered => 0,
                OrderingMode::PerKey => {
                    let next = by_key.len();
                    *by_key.entry(key.clone()).or_insert(next)
                }
            };
            if q == queues.len() {
                queues.push(VecDeque::new());
            }
            queues[q].push_back(Pending {
                index,
                key,
                data,
                attempts: 0,
                queue: q,
            });
        }
        SendQueue {
            rotation: (0..queues.len()).collect(),
            queues,
            per_queue: match ordering {
                OrderingMode::PerKey => 1,
                OrderingMode::Unordered => usize::MAX,
            },
            len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the next call's records, at most `max_records` and `max_bytes`. Always takes at
    /// least one record when any is pending.
    pub fn next_call(&mut self, max_records: usize, max_bytes: usize) -> Vec<Pending> {
        let mut call = Vec::new();
        let mut bytes = 0usize;
        let mut visited = Vec::new();
        'outer: while let Some(q) = self.rotation.pop_front() {
            visited.push(q);
            let mut taken = 0;
            while taken < self.per_queue {
                let Some(head) = self.queues[q].front() else {
                    break;
                };
                let full = call.len() >= max_records || bytes + head.size() > max_bytes;
                if full && !call.is_empty() {
                    if taken == 0 {
                        visited.pop();
                        self.rotation.push_front(q);
                    }
                    break 'outer;
                }
                if let Some(p) = self.queues[q].pop_front() {
                    bytes += p.size();
                    call.push(p);
                    taken += 1;
                }
            }
        }
        // Queues visited go to the back, keeping their relative order.
        for q in visited {
            if !self.queues[q].is_empty() {
                self.rotation.push_back(q);
            }
        }
        self.len -= call.len();
        call
    }

    /// Puts records back at the front of their queues, in their original order.
    pub fn requeue(&mut self, mut records: Vec<Pending>) {
        records.sort_by_key(|p| std::cmp::Reverse(p.index));
        for p in records {
            let q = p.queue;
            if self.queues[q].is_empty() && !self.rotation.contains(&q) {
                self.rotation.push_front(q);
            }
            self.queues[q].push_front(p);
            self.len += 1;
        }
    }

    /// Drains everything still pending.
    pub fn drain(&mut self) -> Vec<Pending> {
        self.rotation.clear();
        self.len = 0;
        self.queues.iter_mut().flat_map(|q| q.drain(..)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(keys: &[&str]) -> Vec<(usize, String, Bytes)> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (i, k.to_string(), Bytes::from(vec![b'x'; 10])))
            .collect()
    }

    #[test]
    fn per_key_calls_hold_one_record_per_key() {
        let mut q = SendQueue::new(OrderingMode::PerKey, recs(&["a", "a", "b", "a", "c"]));
        let first: Vec<usize> = q.next_call(500, 1 << 20).iter().map(|p| p.index).collect();
        assert_eq!(first, vec![0, 2, 4]);
        let second = q.next_call(500, 1 << 20);
        assert_eq!(second.iter().map(|p| p.index).collect::<Vec<_>>(), vec![1]);
        q.requeue(second);
        let third: Vec<usize> = q.next_call(500, 1 << 20).iter().map(|p| p.index).collect();
        assert_eq!(third, vec![1]);
        assert_eq!(q.next_call(500, 1 << 20)[0].index, 3);
        assert!(q.is_empty());
    }

    #[test]
    fn unordered_calls_respect_record_and_byte_limits() {
        let keys: Vec<&str> = vec!["k"; 12];
        let mut q = SendQueue::new(OrderingMode::Unordered, recs(&keys));
        assert_eq!(q.next_call(5, 1 << 20).len(), 5);
        // 11 bytes each: 33 bytes fit three.
        assert_eq!(q.next_call(500, 33).len(), 3);
        assert_eq!(q.next_call(500, 1 << 20).len(), 4);
        assert!(q.is_empty());
    }
}
