//! Decimal encoding of version-2 sequence numbers without going through hex text.
//!
//! The fields are packed, in the layout documented on [`SequenceParts`], into a 192-bit
//! integer (six 32-bit limbs, most significant first) which is then written in decimal by
//! repeated division by 10^9. 32-bit limbs keep every division a 64-bit one by a constant,
//! which compiles to multiplications. The output is canonical: no leading zeros, `"0"` for
//! zero. Every appended and every read record needs one, so this is on the hot path.

use super::{SequenceParts, TIME_MAX};

/// A 192-bit unsigned integer as six 32-bit limbs, most significant first.
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

/// The canonical decimal text of `parts` (fields clamped as [`SequenceParts::encode`] says).
pub(super) fn to_decimal(parts: &SequenceParts) -> String {
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
    out
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
