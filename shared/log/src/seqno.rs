//! Fast encoding of Kinesis version-2 sequence numbers.
//!
//! Produces exactly what [`shardline_core::stream::SequenceParts::encode`] does (the same
//! 188-bit layout and clamping, written in decimal) without formatting through hex strings:
//! the fields are packed into a 192-bit integer and converted with three divisions by 10^19.
//! Every acknowledged and every read record needs one, so this is on the hot path.

use shardline_core::stream::{SequenceNumber, SequenceParts};

const TIME_MAX: u64 = (1 << 36) - 1;

/// A 192-bit unsigned integer as six 32-bit limbs, most significant first (32-bit limbs keep
/// every division a 64-bit one by a constant, which compiles to multiplications).
#[derive(Clone, Copy, Default)]
struct U192([u32; 6]);

impl U192 {
    /// `self << bits | value`, for `1 <= bits <= 32` and `value < 2^bits`.
    fn push(self, value: u64, bits: u32) -> U192 {
        let mut out = [0u32; 6];
        for (i, slot) in out.iter_mut().enumerate() {
            let cur = u64::from(self.0[i]);
            let next = self
                .0
                .get(i + 1)
                .map_or(value << (32 - bits), |&n| u64::from(n));
            *slot = ((cur << bits) | (next >> (32 - bits))) as u32;
        }
        U192(out)
    }

    /// Pushes a field of up to 64 bits.
    fn push_wide(self, value: u64, bits: u32) -> U192 {
        if bits > 32 {
            self.push(value >> 32, bits - 32)
                .push(value & 0xffff_ffff, 32)
        } else {
            self.push(value, bits)
        }
    }

    /// Divides in place by 10^9, returning the remainder.
    fn div_rem_1e9(&mut self) -> u64 {
        let mut rem: u64 = 0;
        for limb in self.0.iter_mut() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        rem
    }
}

/// Encodes `parts` as its decimal sequence number.
pub fn encode(parts: &SequenceParts) -> SequenceNumber {
    let mut x = U192::default()
        .push(2, 4)
        .push_wide(parts.shard_created_secs.min(TIME_MAX), 36)
        .push(u64::from(parts.shard_index & 0xf), 4)
        .push_wide(parts.offset.min(i64::MAX as u64), 64)
        .push(0, 8)
        .push_wide(parts.arrival_secs.min(TIME_MAX), 36)
        .push(u64::from(parts.shard_index & 0x7fff_ffff), 32)
        .push(2, 4);
    // 188 bits are at most 57 decimal digits: seven chunks of nine.
    let mut chunks = [0u64; 7];
    for c in chunks.iter_mut() {
        *c = x.div_rem_1e9();
    }
    let mut out = String::with_capacity(60);
    let mut started = false;
    for &c in chunks.iter().rev() {
        if started {
            push_padded(&mut out, c);
        } else if c != 0 {
            push_plain(&mut out, c);
            started = true;
        }
    }
    if !started {
        out.push('0');
    }
    // The text is canonical decimal, which is all the conversion checks.
    SequenceNumber::try_from(out).unwrap_or_else(|_| parts.encode())
}

fn push_plain(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| char::from(b)));
}

fn push_padded(out: &mut String, mut v: u64) {
    let mut buf = [b'0'; 9];
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend(buf.iter().map(|&b| char::from(b)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_the_reference_encoding(shard_index in any::<u32>(), offset in any::<u64>(),
                                          created in any::<u64>(), arrival in any::<u64>()) {
            let p = SequenceParts { shard_index, offset, shard_created_secs: created, arrival_secs: arrival };
            prop_assert_eq!(encode(&p), p.encode());
        }
    }

    #[test]
    fn matches_on_small_and_edge_values() {
        for (s, o, c, a) in [
            (0, 0, 0, 0),
            (15, 1, 1_700_000_000, 1_700_000_001),
            (u32::MAX, u64::MAX, u64::MAX, u64::MAX),
        ] {
            let p = SequenceParts {
                shard_index: s,
                offset: o,
                shard_created_secs: c,
                arrival_secs: a,
            };
            assert_eq!(encode(&p), p.encode());
        }
    }
}
