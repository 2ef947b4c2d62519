//! Kinesis's per-shard limits, enforced in the opt-in limits mode.
//!
//! - Writes ([`Throttle`]): 1 MiB/s and 1,000 records/s. A fixed one-second window on the
//!   log's clock: the first records and bytes of each second are admitted up to the limits,
//!   the rest are refused until the next second starts.
//! - Reads ([`ReadThrottle`]): 5 GetRecords calls per second (a fixed one-second window) and
//!   2 MiB/s. The byte budget is a bucket refilled at 2 MiB/s up to 2 MiB; a call is admitted
//!   while the bucket is not empty and is charged what it returned afterwards, so the bucket
//!   can go below zero: as on Kinesis, a call that returned 10 MiB makes the calls of the
//!   next seconds fail until the rate is paid back.

/// Records a shard accepts per second.
pub const RECORDS_PER_SEC: u32 = 1_000;
/// Bytes (data plus partition key) a shard accepts per second.
pub const BYTES_PER_SEC: u64 = 1024 * 1024;

/// The current second's usage of one shard.
#[derive(Debug, Default)]
pub struct Throttle {
    second: i64,
    records: u32,
    bytes: u64,
}

impl Throttle {
    /// Admits one record of `bytes` at `now_ms`, or says which limit it would break.
    ///
    /// # Errors
    /// A message naming the limit.
    pub fn admit(&mut self, now_ms: i64, bytes: u64) -> Result<(), String> {
        let second = now_ms.div_euclid(1000);
        if second != self.second {
            *self = Throttle {
                second,
                records: 0,
                bytes: 0,
            };
        }
        if self.records >= RECORDS_PER_SEC {
            return Err("rate exceeded for shard: more than 1000 records per second".into());
        }
        if self.bytes + bytes > BYTES_PER_SEC {
            return Err("rate exceeded for shard: more than 1 MiB per second".into());
        }
        self.records += 1;
        self.bytes += bytes;
        Ok(())
    }
}

/// GetRecords calls a shard serves per second.
pub const READ_CALLS_PER_SEC: u32 = 5;
/// Bytes a shard returns per second, on average.
pub const READ_BYTES_PER_SEC: i64 = 2 * 1024 * 1024;

/// One shard's read budget.
#[derive(Debug)]
pub struct ReadThrottle {
    second: i64,
    calls: u32,
    /// Bytes that may still be read; negative after a large read.
    budget: i64,
    /// When `budget` was last refilled, epoch ms.
    refilled_ms: Option<i64>,
}

impl Default for ReadThrottle {
    fn default() -> Self {
        ReadThrottle {
            second: i64::MIN,
            calls: 0,
            budget: READ_BYTES_PER_SEC,
            refilled_ms: None,
        }
    }
}

impl ReadThrottle {
    fn refill(&mut self, now_ms: i64) {
        let elapsed = self.refilled_ms.map_or(0, |t| (now_ms - t).max(0));
        self.budget = self
            .budget
            .saturating_add(elapsed.saturating_mul(READ_BYTES_PER_SEC) / 1000)
            .min(READ_BYTES_PER_SEC);
        self.refilled_ms = Some(now_ms);
    }

    /// Admits one GetRecords call at `now_ms`, or says which limit it would break.
    ///
    /// # Errors
    /// A message naming the limit.
    pub fn admit(&mut self, now_ms: i64) -> Result<(), String> {
        let second = now_ms.div_euclid(1000);
        if second != self.second {
            self.second = second;
            self.calls = 0;
        }
        self.refill(now_ms);
        if self.calls >= READ_CALLS_PER_SEC {
            return Err("rate exceeded for shard: more than 5 GetRecords calls per second".into());
        }
        if self.budget <= 0 {
            return Err("rate exceeded for shard: more than 2 MiB per second read".into());
        }
        self.calls += 1;
        Ok(())
    }

    /// Charges an admitted call with the bytes it returned.
    pub fn charge(&mut self, now_ms: i64, bytes: u64) {
        self.refill(now_ms);
        self.budget = self
            .budget
            .saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_calls_a_second_and_a_big_read_is_paid_back() {
        let mut t = ReadThrottle::default();
        for _ in 0..5 {
            assert!(t.admit(10_000).is_ok());
        }
        assert!(t.admit(10_999).expect_err("sixth").contains("5 GetRecords"));
        assert!(t.admit(11_000).is_ok(), "a new second starts afresh");
        t.charge(11_000, 10 * 1024 * 1024);
        // 10 MiB read with 2 MiB in the bucket: 8 MiB owed, paid back at 2 MiB/s.
        assert!(t.admit(12_000).expect_err("owed").contains("2 MiB"));
        assert!(t.admit(14_999).is_err());
        assert!(t.admit(15_001).is_ok(), "paid back after four seconds");
    }

    #[test]
    fn admits_a_second_worth_then_refuses() {
        let mut t = Throttle::default();
        for _ in 0..1000 {
            assert!(t.admit(5_000, 10).is_ok());
        }
        assert!(
            t.admit(5_999, 10)
                .expect_err("over")
                .contains("1000 records")
        );
        assert!(t.admit(6_000, 10).is_ok(), "a new second starts afresh");
        assert!(
            t.admit(6_001, 1024 * 1024)
                .expect_err("bytes")
                .contains("1 MiB")
        );
    }
}
