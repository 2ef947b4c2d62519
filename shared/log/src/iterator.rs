//! Shard iterator tokens: opaque, tamper-evident, valid for five minutes.
//!
//! A token is the standard base64 of `<stream>/<shard index>/<offset>/<stream created
//! ms>/<issued ms>/<mac>`, where `mac` is the first 16 bytes (hex) of HMAC-SHA256 over the text
//! before it, keyed by the log's secret ([`IteratorKey`], `<dir>/ITERATOR_KEY`, created at first
//! open). Stream names cannot hold `/`, so the fields split unambiguously.
//!
//! Invariants:
//! - Only this log can issue a token it accepts: a token edited or made up without the key
//!   fails the MAC and is refused ([`LogError::BadIterator`]). The key survives restarts, so
//!   tokens do too (within their lifetime).
//! - The creation time ties a token to one incarnation of the stream: after a stream is deleted
//!   and re-created, old tokens are refused.
//! - A token issued more than [`ITERATOR_TTL_MS`] ago (on the log's clock) is refused with
//!   [`LogError::ExpiredIterator`], as Kinesis does.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shardline_core::stream::ShardIterator;

use crate::error::LogError;

/// How long a shard iterator stays valid, milliseconds (Kinesis: five minutes).
pub const ITERATOR_TTL_MS: i64 = 300_000;

/// The key file's name in the log directory.
pub const KEY_FILE: &str = "ITERATOR_KEY";

/// The secret that authenticates this log's iterators.
#[derive(Clone)]
pub struct IteratorKey([u8; 32]);

impl std::fmt::Debug for IteratorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IteratorKey(..)")
    }
}

impl IteratorKey {
    /// Reads `<dir>/ITERATOR_KEY`, creating it (32 random bytes, written atomically, mode 0600)
    /// when it is missing or not 32 bytes long.
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn load_or_create(dir: &Path) -> Result<IteratorKey, LogError> {
        let path = dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                return Ok(IteratorKey(key));
            }
            Ok(_) => {
                tracing::warn!(file = %path.display(), "iterator key damaged; issuing a new one (old iterators are refused)")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io(&path, e)),
        }
        let mut key = [0u8; 32];
        rand::fill(&mut key[..]);
        let tmp = dir.join(format!("{KEY_FILE}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(&key)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| LogError::io(&path, e))?;
        crate::meta::sync_dir(dir)?;
        Ok(IteratorKey(key))
    }

    fn mac(&self, body: &str) -> String {
        // HMAC takes a key of any length, so this cannot fail.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(body.as_bytes());
        let tag = m.finalize().into_bytes();
        tag[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A decoded iterator: a position in one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Stream name.
    pub stream: String,
    /// Shard index.
    pub shard: u32,
    /// Next offset to read.
    pub offset: u64,
    /// Creation time of the stream the token was issued for.
    pub stream_created_ms: i64,
    /// When the token was issued, epoch ms on the log's clock.
    pub issued_ms: i64,
}

impl Position {
    /// Encodes into an opaque token.
    pub fn encode(&self, key: &IteratorKey) -> ShardIterator {
        let body = format!(
            "{}/{}/{}/{}/{}",
            self.stream, self.shard, self.offset, self.stream_created_ms, self.issued_ms
        );
        let mac = key.mac(&body);
        ShardIterator(base64::engine::general_purpose::STANDARD.encode(format!("{body}/{mac}")))
    }

    /// Decodes a token and checks its age against `now_ms`.
    ///
    /// # Errors
    /// [`LogError::BadIterator`] when the token was not issued by this log (or was edited);
    /// [`LogError::ExpiredIterator`] when it is older than five minutes.
    pub fn decode(
        it: &ShardIterator,
        key: &IteratorKey,
        now_ms: i64,
    ) -> Result<Position, LogError> {
        let bad =
            || LogError::BadIterator(format!("`{}` was not issued by this log", shorten(&it.0)));
        let text = base64::engine::general_purpose::STANDARD
            .decode(it.0.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)?;
        let (body, mac) = text.rsplit_once('/').ok_or_else(bad)?;
        if !constant_time_eq(mac.as_bytes(), key.mac(body).as_bytes()) {
            return Err(bad());
        }
        let mut parts = body.split('/');
        let (Some(stream), Some(shard), Some(offset), Some(created), Some(issued), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let p = Position {
            stream: stream.to_string(),
            shard: shard.parse().map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
            stream_created_ms: created.parse().map_err(|_| bad())?,
            issued_ms: issued.parse().map_err(|_| bad())?,
        };
        if now_ms.saturating_sub(p.issued_ms) > ITERATOR_TTL_MS {
            return Err(LogError::ExpiredIterator(format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} \
                 which is further in the future than the tolerated delay of {ITERATOR_TTL_MS} \
                 milliseconds.",
                amz_time(p.issued_ms),
                amz_time(now_ms)
            )));
        }
        Ok(p)
    }
}

/// `Thu Jan 22 01:22:02 UTC 2015`, the form Kinesis's expiry message uses.
fn amz_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%a %b %d %H:%M:%S UTC %Y").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(80).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> IteratorKey {
        IteratorKey([b; 32])
    }

    fn position() -> Position {
        Position {
            stream: "m.x-1".into(),
            shard: 3,
            offset: 99,
            stream_created_ms: 17,
            issued_ms: 1_000_000,
        }
    }

    #[test]
    fn round_trips_and_refuses_edits_and_other_keys() {
        let p = position();
        let t = p.encode(&key(1));
        assert_eq!(
            Position::decode(&t, &key(1), 1_000_000).expect("decodes"),
            p
        );
        let text = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(&t.0)
                .expect("base64"),
        )
        .expect("utf8");
        let edited = ShardIterator(
            base64::engine::general_purpose::STANDARD.encode(text.replace("/99/", "/98/")),
        );
        assert!(matches!(
            Position::decode(&edited, &key(1), 1_000_000),
            Err(LogError::BadIterator(_))
        ));
        assert!(
            matches!(
                Position::decode(&t, &key(2), 1_000_000),
                Err(LogError::BadIterator(_))
            ),
            "a token from another log (another key) is refused"
        );
        assert!(Position::decode(&ShardIterator("garbage".into()), &key(1), 0).is_err());
    }

    #[test]
    fn expires_after_five_minutes_with_kinesis_wording() {
        let t = position().encode(&key(1));
        assert!(Position::decode(&t, &key(1), 1_000_000 + ITERATOR_TTL_MS).is_ok());
        let err = Position::decode(&t, &key(1), 1_000_001 + ITERATOR_TTL_MS)
            .expect_err("expired")
            .to_string();
        assert!(
            err.starts_with(
                "Iterator expired. The iterator was created at time Thu Jan 01 00:16:40 UTC 1970 \
                 while right now it is Thu Jan 01 00:21:40 UTC 1970"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = IteratorKey::load_or_create(dir.path()).expect("create");
        let b = IteratorKey::load_or_create(dir.path()).expect("load");
        assert_eq!(a.0, b.0);
        std::fs::write(dir.path().join(KEY_FILE), b"short").expect("damage");
        let c = IteratorKey::load_or_create(dir.path()).expect("recreate");
        assert_ne!(a.0, c.0);
    }
}
