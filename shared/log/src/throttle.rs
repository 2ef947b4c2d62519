//! Kinesis's per-shard write limits: 1 MiB/s and 1,000 records/s.
//!
//! A fixed one-second window on the log's clock: the first records and bytes of each second
//! are admitted up to the limits, the rest are refused until the next second starts.

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

#[cfg(test)]
mod tests {
    use super::*;

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
