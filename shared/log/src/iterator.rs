//! Shard iterator tokens.
//!
//! A token is `<stream>/<shard index>/<offset>/<stream created ms>/<crc>` where `crc` is the
//! CRC32C of the text before it, in hex. Stream names cannot hold `/`, so the fields split
//! unambiguously. The creation time ties the token to one incarnation of the stream: after a
//! stream is deleted and re-created, old tokens are refused. Tokens do not expire with time.

use shardline_core::stream::ShardIterator;

use crate::error::LogError;

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
}

impl Position {
    /// Encodes into an opaque token.
    pub fn encode(&self) -> ShardIterator {
        let body = format!(
            "{}/{}/{}/{}",
            self.stream, self.shard, self.offset, self.stream_created_ms
        );
        let crc = crc32c::crc32c(body.as_bytes());
        ShardIterator(format!("{body}/{crc:08x}"))
    }

    /// Decodes a token.
    ///
    /// # Errors
    /// [`LogError::BadIterator`] when the token was not issued by this log.
    pub fn decode(it: &ShardIterator) -> Result<Position, LogError> {
        let bad =
            || LogError::BadIterator(format!("`{}` was not issued by this log", shorten(&it.0)));
        let (body, crc) = it.0.rsplit_once('/').ok_or_else(bad)?;
        if u32::from_str_radix(crc, 16).ok() != Some(crc32c::crc32c(body.as_bytes())) {
            return Err(bad());
        }
        let mut parts = body.split('/');
        let (Some(stream), Some(shard), Some(offset), Some(created), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        Ok(Position {
            stream: stream.to_string(),
            shard: shard.parse().map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
            stream_created_ms: created.parse().map_err(|_| bad())?,
        })
    }
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

    #[test]
    fn round_trips_and_rejects_tampering() {
        let p = Position {
            stream: "m.x-1".into(),
            shard: 3,
            offset: 99,
            stream_created_ms: 17,
        };
        let t = p.encode();
        assert_eq!(Position::decode(&t).expect("decodes"), p);
        let forged = ShardIterator(t.0.replace("/99/", "/98/"));
        assert!(matches!(
            Position::decode(&forged),
            Err(LogError::BadIterator(_))
        ));
        assert!(Position::decode(&ShardIterator("garbage".into())).is_err());
    }
}
