//! The record frame: how one record is laid out in a segment file.
//!
//! All integers are little-endian.
//!
//! | bytes | field |
//! |---|---|
//! | 4 | `body_len`: bytes after this 8-byte header |
//! | 4 | CRC32C (Castagnoli) of the body |
//! | 8 | offset of the record in its shard (u64) |
//! | 8 | arrival time, epoch milliseconds (i64) |
//! | 2 | partition key length in bytes (u16) |
//! | 1 | flags: bit 0 set when an explicit hash key follows; bit 1 ([`SYNCED_BEFORE`]) see below |
//! | 0 or 16 | explicit hash key (u128) |
//! | n | partition key, UTF-8 |
//! | rest | data |
//!
//! A frame is valid when its header is complete, `body_len` lies in
//! [`MIN_BODY`]..=[`MAX_BODY`], the whole body is present, the CRC matches, and the key is
//! UTF-8 and fits the body. Frames never span segment files.
//!
//! Flag bit 1, *synced before*, is set on a frame when every byte of its segment before it
//! was durable (`fdatasync` had returned) before the frame was written: the first frame of a
//! segment, and the first frame of each group-commit batch written after a sync. Recovery uses
//! it to tell damage in synced bytes (a later frame says they were synced: refuse to open)
//! from damage in the unsynced suffix a power loss can leave (cut it). Segments written
//! before the flag existed carry no frame with it; recovery recognises them by their first
//! frame and applies the older rule to them (see `crate::recovery`).

use bytes::Bytes;

/// Bytes before the body: length and CRC.
pub const HEADER: usize = 8;
/// Smallest possible body: offset, arrival, key length, flags.
pub const MIN_BODY: usize = 19;
/// Largest body accepted: a 1 MiB record plus its key and hash key, with headroom.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

const FLAG_EXPLICIT_HASH_KEY: u8 = 1;
/// Flag bit: every byte of the segment before this frame was synced before it was written.
pub const SYNCED_BEFORE: u8 = 2;
const KNOWN_FLAGS: u8 = FLAG_EXPLICIT_HASH_KEY | SYNCED_BEFORE;

/// One decoded frame; `data` shares the buffer it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Offset in the shard.
    pub offset: u64,
    /// Arrival time, epoch milliseconds.
    pub arrival_ms: i64,
    /// Partition key.
    pub partition_key: String,
    /// Explicit hash key, if the record was put with one.
    pub explicit_hash_key: Option<u128>,
    /// Payload.
    pub data: Bytes,
}

/// What decoding at one position found.
#[derive(Debug)]
pub enum Decoded<T> {
    /// A valid frame and its total length (header plus body).
    Frame(T, usize),
    /// The buffer ends before the frame does: `need` bytes in total would hold it.
    Incomplete {
        /// Total frame length announced by the header (0 when even the header is cut).
        need: usize,
    },
    /// The bytes here are not a valid frame.
    Bad(&'static str),
}

/// Total encoded length of a frame.
pub fn encoded_len(partition_key: &str, explicit_hash_key: Option<u128>, data_len: usize) -> usize {
    HEADER + MIN_BODY + partition_key.len() + explicit_hash_key.map_or(0, |_| 16) + data_len
}

/// Appends one frame to `out`; `synced_before` sets the [`SYNCED_BEFORE`] flag.
pub fn encode(
    out: &mut Vec<u8>,
    offset: u64,
    arrival_ms: i64,
    partition_key: &str,
    explicit_hash_key: Option<u128>,
    data: &[u8],
    synced_before: bool,
) {
    let extra = if synced_before { SYNCED_BEFORE } else { 0 };
    let start = out.len();
    let body_len = encoded_len(partition_key, explicit_hash_key, data.len()) - HEADER;
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&arrival_ms.to_le_bytes());
    out.extend_from_slice(&(partition_key.len() as u16).to_le_bytes());
    match explicit_hash_key {
        Some(k) => {
            out.push(FLAG_EXPLICIT_HASH_KEY | extra);
            out.extend_from_slice(&k.to_le_bytes());
        }
        None => out.push(extra),
    }
    out.extend_from_slice(partition_key.as_bytes());
    out.extend_from_slice(data);
    let crc = crc32c::crc32c(&out[start + HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The cheap part of a frame: position fields without the key and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// Offset in the shard.
    pub offset: u64,
    /// Arrival time, epoch milliseconds.
    pub arrival_ms: i64,
    /// Whether the frame carries the [`SYNCED_BEFORE`] flag.
    pub synced_before: bool,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Validates the frame at the start of `buf` (length, CRC, layout) and returns its head.
pub fn check(buf: &[u8]) -> Decoded<FrameHead> {
    if buf.len() < HEADER {
        return Decoded::Incomplete { need: 0 };
    }
    let body_len = u32_at(buf, 0) as usize;
    if !(MIN_BODY..=MAX_BODY).contains(&body_len) {
        return Decoded::Bad("frame length out of range");
    }
    let total = HEADER + body_len;
    if buf.len() < total {
        return Decoded::Incomplete { need: total };
    }
    let body = &buf[HEADER..total];
    if crc32c::crc32c(body) != u32_at(buf, 4) {
        return Decoded::Bad("CRC mismatch");
    }
    let key_len = usize::from(u16::from_le_bytes([body[16], body[17]]));
    let flags = body[18];
    if flags & !KNOWN_FLAGS != 0 {
        return Decoded::Bad("unknown frame flags");
    }
    let ehk = if flags & FLAG_EXPLICIT_HASH_KEY != 0 {
        16
    } else {
        0
    };
    if MIN_BODY + ehk + key_len > body_len {
        return Decoded::Bad("partition key longer than frame");
    }
    Decoded::Frame(
        FrameHead {
            offset: u64_at(body, 0),
            arrival_ms: u64_at(body, 8) as i64,
            synced_before: flags & SYNCED_BEFORE != 0,
        },
        total,
    )
}

/// Decodes the frame at `at` in `buf`, sharing `buf` for the data: [`check`] then
/// [`parse_checked`] (readers call those two directly, so the CRC is computed once).
#[cfg(test)]
pub fn decode(buf: &Bytes, at: usize) -> Decoded<Frame> {
    match check(&buf[at..]) {
        Decoded::Frame(head, total) => match parse_checked(buf, at, head, total) {
            Ok(f) => Decoded::Frame(f, total),
            Err(why) => Decoded::Bad(why),
        },
        Decoded::Incomplete { need } => Decoded::Incomplete { need },
        Decoded::Bad(why) => Decoded::Bad(why),
    }
}

/// Builds the frame at `at` in `buf` that [`check`] has already accepted as `head` with
/// length `total`, without computing its CRC again; `data` is a view of `buf`, not a copy.
///
/// Only the partition key's UTF-8 is validated here: length, CRC, flags and key bounds are
/// what `check` established for exactly these bytes. `buf` is immutable, so they still hold.
///
/// # Errors
/// The reason when the partition key is not UTF-8.
pub fn parse_checked(
    buf: &Bytes,
    at: usize,
    head: FrameHead,
    total: usize,
) -> Result<Frame, &'static str> {
    let frame = buf
        .get(at..at + total)
        .ok_or("frame runs past the buffer")?;
    let body = &frame[HEADER..];
    let key_len = usize::from(u16::from_le_bytes([body[16], body[17]]));
    let mut p = MIN_BODY;
    let explicit_hash_key = if body[18] & FLAG_EXPLICIT_HASH_KEY != 0 {
        let mut k = [0u8; 16];
        k.copy_from_slice(&body[p..p + 16]);
        p += 16;
        Some(u128::from_le_bytes(k))
    } else {
        None
    };
    let key = body
        .get(p..p + key_len)
        .ok_or("partition key longer than frame")?;
    let partition_key = match std::str::from_utf8(key) {
        Ok(k) => k.to_owned(),
        Err(_) => return Err("partition key is not UTF-8"),
    };
    let data_start = at + HEADER + p + key_len;
    Ok(Frame {
        offset: head.offset,
        arrival_ms: head.arrival_ms,
        partition_key,
        explicit_hash_key,
        data: buf.slice(data_start..at + total),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_hash_key() {
        let mut out = Vec::new();
        encode(
            &mut out,
            7,
            1_700_000_000_123,
            "host-1",
            None,
            b"hello",
            true,
        );
        encode(
            &mut out,
            8,
            1_700_000_000_124,
            "k",
            Some(u128::MAX - 3),
            b"",
            false,
        );
        let buf = Bytes::from(out);
        let Decoded::Frame(a, la) = decode(&buf, 0) else {
            panic!("first frame")
        };
        assert_eq!(
            (a.offset, a.partition_key.as_str(), &a.data[..]),
            (7, "host-1", &b"hello"[..])
        );
        assert_eq!(la, encoded_len("host-1", None, 5));
        let Decoded::Frame(head, _) = check(&buf) else {
            panic!("first head")
        };
        assert!(head.synced_before);
        let Decoded::Frame(b, lb) = decode(&buf, la) else {
            panic!("second frame")
        };
        assert_eq!(b.explicit_hash_key, Some(u128::MAX - 3));
        let Decoded::Frame(head, _) = check(&buf[la..]) else {
            panic!("second head")
        };
        assert!(!head.synced_before);
        assert_eq!(la + lb, buf.len());
    }

    #[test]
    fn detects_damage_and_truncation() {
        let mut out = Vec::new();
        encode(&mut out, 1, 2, "key", None, b"payload", true);
        for cut in 0..out.len() {
            assert!(
                matches!(check(&out[..cut]), Decoded::Incomplete { .. }),
                "cut {cut}"
            );
        }
        for i in 4..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            assert!(matches!(check(&bad), Decoded::Bad(_)), "flip at {i}");
        }
    }
}
