//! The AWS event stream encoding (`application/vnd.amazon.eventstream`), as SubscribeToShard
//! answers with it.
//!
//! A message is `total length u32 · headers length u32 · CRC32(first 8 bytes) u32 · headers ·
//! payload · CRC32(everything before) u32` (big-endian, CRC-32/IEEE). A header is
//! `name length u8 · name · type u8 · value`; only string values (type 7: `length u16 ·
//! bytes`) are written, which is all Kinesis's messages use (`:message-type`, `:event-type`,
//! `:exception-type`, `:content-type`). [`decode`] reads messages back (tests, and anyone
//! checking a capture).

/// A decoded message: its string headers and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Name and value of each string header, in order.
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Encodes one message.
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An event message of `event_type` with a JSON payload.
pub fn event(event_type: &str, json: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", "application/x-amz-json-1.1"),
        ],
        json,
    )
}

/// An exception message of `kind` with a JSON payload.
pub fn exception(kind: &str, json: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":message-type", "exception"),
            (":exception-type", kind),
            (":content-type", "application/x-amz-json-1.1"),
        ],
        json,
    )
}

/// Decodes the messages of `bytes`; `None` if any is damaged or incomplete.
pub fn decode(mut bytes: &[u8]) -> Option<Vec<Message>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let total = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
        let hlen = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
        let msg = bytes.get(..total)?;
        if total < 16 || 12 + hlen + 4 > total {
            return None;
        }
        if crc32fast::hash(&msg[..8]).to_be_bytes() != msg[8..12]
            || crc32fast::hash(&msg[..total - 4]).to_be_bytes() != msg[total - 4..]
        {
            return None;
        }
        let mut h = &msg[12..12 + hlen];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let n = *h.first()? as usize;
            let name = std::str::from_utf8(h.get(1..1 + n)?).ok()?.to_string();
            if *h.get(1 + n)? != 7 {
                return None;
            }
            let len = u16::from_be_bytes(h.get(2 + n..4 + n)?.try_into().ok()?) as usize;
            let value = std::str::from_utf8(h.get(4 + n..4 + n + len)?)
                .ok()?
                .to_string();
            headers.push((name, value));
            h = &h[4 + n + len..];
        }
        out.push(Message {
            headers,
            payload: msg[12 + hlen..total - 4].to_vec(),
        });
        bytes = &bytes[total..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_damage_is_found() {
        let mut bytes = event("initial-response", b"{}");
        bytes.extend(exception(
            "ResourceNotFoundException",
            br#"{"message":"gone"}"#,
        ));
        let msgs = decode(&bytes).expect("valid");
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].header(":event-type"), Some("initial-response"));
        assert_eq!(
            msgs[1].header(":exception-type"),
            Some("ResourceNotFoundException")
        );
        assert_eq!(msgs[1].payload, br#"{"message":"gone"}"#);
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        assert_eq!(decode(&damaged), None);
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
    }
}
