//! AWS Signature Version 4 verification (the `Authorization` header form), for endpoints with
//! access keys configured.
//!
//! The server recomputes the signature the client must have computed: the canonical request
//! (method, canonical URI, canonical query, the signed headers lower-cased with values trimmed
//! and inner spaces folded, the signed header list, the payload's SHA-256), the string to sign
//! (`AWS4-HMAC-SHA256`, the request time, the credential scope, the canonical request's hash)
//! and the HMAC chain of the secret over date, region, service and `aws4_request`; it then
//! compares in constant time. Refusals carry Kinesis's error types and wording:
//! `MissingAuthenticationTokenException`, `IncompleteSignatureException`,
//! `UnrecognizedClientException` (unknown key id), `InvalidSignatureException` (mismatch,
//! a request time more than five minutes off, a scope for another service or date).
//!
//! Deliberate limits: the region in the scope is not required to be the endpoint's (clients
//! point at a local endpoint with whatever region they are configured for; the signature still
//! covers it); query-string (presigned) authentication is refused.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::config::AccessKey;
use crate::error::ApiError;

/// How far a request's time may be from the server's.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// What a request offers for verification.
#[derive(Debug)]
pub struct Signed<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The path as sent (already percent-encoded).
    pub path: &'a str,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// `host` when the request has no Host header (HTTP/2's `:authority`).
    pub authority: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 encoding of everything but unreserved characters.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(q: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = q
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The request time, epoch ms, from `X-Amz-Date` (`20150830T123600Z`) or `Date`.
fn request_time(h: &HeaderMap) -> Option<(i64, String)> {
    if let Some(d) = header(h, "x-amz-date") {
        let t = chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok()?;
        return Some((t.and_utc().timestamp_millis(), d.to_string()));
    }
    let d = header(h, "date")?;
    let t = chrono::DateTime::parse_from_rfc2822(d).ok()?;
    Some((
        t.timestamp_millis(),
        t.with_timezone(&chrono::Utc)
            .format("%Y%m%dT%H%M%SZ")
            .to_string(),
    ))
}

fn amz(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

/// Verifies the request's signature against `keys`.
///
/// # Errors
/// The refusal Kinesis would send.
pub fn verify(req: &Signed<'_>, keys: &[AccessKey], now_ms: i64) -> Result<(), ApiError> {
    let auth = header(req.headers, "authorization");
    let query_auth = req.query.is_some_and(|q| {
        q.split('&')
            .any(|p| p.split('=').next() == Some("X-Amz-Algorithm"))
    });
    if auth.is_some() && query_auth {
        return Err(ApiError::client(
            "InvalidSignatureException",
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
        ));
    }
    let Some(auth) = auth else {
        if query_auth {
            return Err(ApiError::client(
                "InvalidSignatureException",
                "This endpoint accepts SigV4 in the Authorization header only; sign the request \
                 instead of presigning its URL.",
            ));
        }
        return Err(ApiError::client(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let mut params = std::collections::HashMap::new();
    let mut words = auth.split([',', ' ']).filter(|w| !w.is_empty());
    let algorithm = words.next().unwrap_or("");
    for w in words {
        if let Some((k, v)) = w.trim().split_once('=') {
            params.insert(k, v);
        }
    }
    let mut msg = String::new();
    for p in ["Credential", "Signature", "SignedHeaders"] {
        if !params.contains_key(p) {
            msg.push_str(&format!("Authorization header requires '{p}' parameter. "));
        }
    }
    let time = request_time(req.headers);
    if header(req.headers, "x-amz-date").is_none() && header(req.headers, "date").is_none() {
        msg.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    if !msg.is_empty() {
        return Err(ApiError::client(
            "IncompleteSignatureException",
            format!("{msg}Authorization={auth}"),
        ));
    }
    if algorithm != "AWS4-HMAC-SHA256" {
        return Err(ApiError::client(
            "IncompleteSignatureException",
            format!("Unsupported AWS 'algorithm': '{algorithm}'"),
        ));
    }
    let credential = params.get("Credential").copied().unwrap_or("");
    let mut scope = credential.splitn(5, '/');
    let (Some(key_id), Some(date), Some(region), Some(service), Some(terminal)) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(ApiError::client(
            "IncompleteSignatureException",
            format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. \
                 keyid/date/region/service/term, got '{credential}'"
            ),
        ));
    };
    let Some(key) = keys.iter().find(|k| k.id == key_id) else {
        return Err(ApiError::client(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    };
    let Some((t_ms, t_text)) = time else {
        return Err(ApiError::client(
            "IncompleteSignatureException",
            "Date must be in ISO-8601 'basic format'. Got an unreadable X-Amz-Date or Date header.",
        ));
    };
    if t_ms < now_ms - MAX_SKEW_MS {
        return Err(ApiError::client(
            "InvalidSignatureException",
            format!(
                "Signature expired: {t_text} is now earlier than {} ({} - 5 min.)",
                amz(now_ms - MAX_SKEW_MS),
                amz(now_ms)
            ),
        ));
    }
    if t_ms > now_ms + MAX_SKEW_MS {
        return Err(ApiError::client(
            "InvalidSignatureException",
            format!(
                "Signature not yet current: {t_text} is still later than {} ({} + 5 min.)",
                amz(now_ms + MAX_SKEW_MS),
                amz(now_ms)
            ),
        ));
    }
    if !t_text.starts_with(date) || date.len() != 8 {
        return Err(ApiError::client(
            "InvalidSignatureException",
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{date}' != '{}', from '{t_text}'.",
                &t_text[..8.min(t_text.len())]
            ),
        ));
    }
    if service != "kinesis" || terminal != "aws4_request" {
        return Err(ApiError::client(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to correct service: 'kinesis'. Got '{credential}'."
            ),
        ));
    }
    let signed: Vec<&str> = params
        .get("SignedHeaders")
        .copied()
        .unwrap_or("")
        .split(';')
        .collect();
    let mut canonical_headers = String::new();
    for name in &signed {
        let values: Vec<String> = if *name == "host" && req.headers.get("host").is_none() {
            req.authority
                .map(|a| vec![a.to_string()])
                .unwrap_or_default()
        } else {
            req.headers
                .get_all(*name)
                .iter()
                .map(|v| {
                    String::from_utf8_lossy(v.as_bytes())
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        };
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload = hex(&Sha256::digest(req.body));
    if let Some(claimed) = header(req.headers, "x-amz-content-sha256")
        && claimed != "UNSIGNED-PAYLOAD"
        && claimed != payload
    {
        return Err(ApiError::client(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(path, true),
        canonical_query(req.query),
        canonical_headers,
        signed.join(";"),
        header(req.headers, "x-amz-content-sha256")
            .filter(|c| *c == "UNSIGNED-PAYLOAD")
            .map_or(payload.clone(), str::to_string)
    );
    let scope = format!("{date}/{region}/{service}/{terminal}");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{t_text}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut k = hmac(format!("AWS4{}", key.secret).as_bytes(), date.as_bytes());
    for part in [region, service, terminal] {
        k = hmac(&k, part.as_bytes());
    }
    let expected = hex(&hmac(&k, to_sign.as_bytes()));
    let given = params.get("Signature").copied().unwrap_or("");
    let same = expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(ApiError::client(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AccessKey {
        AccessKey {
            id: "AKIDEXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    /// A request signed by hand the way the SDKs sign, checked against the algorithm above;
    /// the signature itself is verified end to end against botocore and aws-sdk-rust in the
    /// integration tests.
    fn headers(auth: &str, date: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", "127.0.0.1:4567".parse().expect("host"));
        h.insert("x-amz-date", date.parse().expect("date"));
        h.insert(
            "x-amz-target",
            "Kinesis_20131202.ListStreams".parse().expect("target"),
        );
        h.insert("authorization", auth.parse().expect("auth"));
        h
    }

    fn sign(body: &[u8], date: &str, secret: &str) -> String {
        let canonical = format!(
            "POST\n/\n\nhost:127.0.0.1:4567\nx-amz-date:{date}\nx-amz-target:Kinesis_20131202.ListStreams\n\nhost;x-amz-date;x-amz-target\n{}",
            hex(&Sha256::digest(body))
        );
        let scope = format!("{}/us-west-2/kinesis/aws4_request", &date[..8]);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut k = hmac(format!("AWS4{secret}").as_bytes(), &date.as_bytes()[..8]);
        for p in ["us-west-2", "kinesis", "aws4_request"] {
            k = hmac(&k, p.as_bytes());
        }
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, SignedHeaders=host;x-amz-date;x-amz-target, Signature={}",
            hex(&hmac(&k, to_sign.as_bytes()))
        )
    }

    fn check(h: &HeaderMap, body: &[u8], now: i64) -> Result<(), ApiError> {
        verify(
            &Signed {
                method: "POST",
                path: "/",
                query: None,
                headers: h,
                authority: None,
                body,
            },
            &[key()],
            now,
        )
    }

    const NOW: i64 = 1_440_938_160_000; // 2015-08-30T12:36:00Z

    #[test]
    fn accepts_a_good_signature_and_refuses_edits() {
        let date = "20150830T123600Z";
        let auth = sign(b"{}", date, &key().secret);
        assert_eq!(check(&headers(&auth, date), b"{}", NOW), Ok(()));
        let e = check(&headers(&auth, date), b"{ }", NOW).expect_err("body changed");
        assert_eq!(e.kind, "InvalidSignatureException");
        let bad = sign(b"{}", date, "not the secret");
        let e = check(&headers(&bad, date), b"{}", NOW).expect_err("wrong secret");
        assert!(
            e.message
                .as_deref()
                .is_some_and(|m| m.starts_with("The request signature we calculated"))
        );
        let e = check(
            &headers(&auth.replace("AKIDEXAMPLE", "AKIDOTHER"), date),
            b"{}",
            NOW,
        )
        .expect_err("unknown key");
        assert_eq!(e.kind, "UnrecognizedClientException");
    }

    #[test]
    fn refuses_stale_incomplete_and_missing_authentication() {
        let date = "20150830T123600Z";
        let auth = sign(b"{}", date, &key().secret);
        let e = check(&headers(&auth, date), b"{}", NOW + MAX_SKEW_MS + 1000).expect_err("stale");
        assert_eq!(
            e.message.as_deref(),
            Some(
                "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"
            )
        );
        let e = check(&headers("a", date), b"{}", NOW).expect_err("incomplete");
        assert_eq!(e.kind, "IncompleteSignatureException");
        assert!(e.message.as_deref().is_some_and(|m| {
            m.starts_with("Authorization header requires 'Credential' parameter.")
        }));
        let e = check(&HeaderMap::new(), b"{}", NOW).expect_err("missing");
        assert_eq!(e.kind, "MissingAuthenticationTokenException");
    }
}
