//! Driving a sink as the consumer runtime does: after a retryable error the same batch (or
//! flush) again, counting the errors; non-forced flushes until a background write lands.

#![allow(dead_code)]

use shardline_consumers::{Sink, SinkRecord};
use shardline_core::{SequenceNumber, ShardId};

/// The errors seen, each of which must mention `expected`; more than `limit` fails the test.
pub struct Retries {
    pub errors: usize,
    pub expected: &'static str,
    pub limit: usize,
}

impl Retries {
    pub fn new(expected: &'static str) -> Self {
        Retries {
            errors: 0,
            expected,
            limit: 10,
        }
    }

    fn note(&mut self, e: &shardline_core::Error) {
        assert!(e.to_string().contains(self.expected), "{e}");
        self.errors += 1;
        assert!(self.errors <= self.limit, "the failures do not stop");
    }

    /// `sink.write` of `batch` until it succeeds; its durable mark.
    pub async fn write(
        &mut self,
        sink: &mut dyn Sink,
        shard: ShardId,
        batch: &[SinkRecord],
        now_ms: i64,
    ) -> Option<SequenceNumber> {
        loop {
            match sink.write(shard, batch, now_ms).await {
                Ok(d) => return d,
                Err(e) => self.note(&e),
            }
        }
    }

    /// `sink.flush` until it succeeds; the marks it reported.
    pub async fn flush(
        &mut self,
        sink: &mut dyn Sink,
        now_ms: i64,
        force: bool,
    ) -> Vec<(ShardId, SequenceNumber)> {
        loop {
            match sink.flush(now_ms, force).await {
                Ok(advanced) => return advanced,
                Err(e) => self.note(&e),
            }
        }
    }
}

/// Non-forced flushes at `now_ms` until one reports a durable mark (a non-forced flush does
/// not wait for the write it started).
pub async fn settle(sink: &mut dyn Sink, now_ms: i64) -> Vec<(ShardId, SequenceNumber)> {
    for _ in 0..500 {
        let advanced = sink.flush(now_ms, false).await.expect("flush");
        if !advanced.is_empty() {
            return advanced;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no write finished within 5 s");
}
