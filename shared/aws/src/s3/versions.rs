//! S3's versioned, ranged and one-level reads and its conditional puts, behind the
//! [`ObjectStore`](shardline_core::ports::ObjectStore) methods `get_versioned`, `get_range`,
//! `list_level` and `put_if`.
//!
//! - Conditional puts send `If-None-Match: *` or `If-Match: <ETag>` on PutObject (and on
//!   CompleteMultipartUpload above the multipart threshold): S3 checks and writes in one step
//!   and answers 412 PreconditionFailed (or 409 ConditionalRequestConflict for a concurrent
//!   conditional write) when the condition fails, which maps to `Conflict`. A put conditional
//!   on the version of a missing object fails with `NotFound` (S3's 404).
//! - Ranged reads send a `Range` header and take the object's size from `Content-Range`.
//! - A level lists with `Delimiter=/`, every page.

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use shardline_core::ports::{ByteRange, ObjectLevel, ObjectMeta, PutCondition, RangedObject};
use shardline_core::{Error, Result};

use super::S3ObjectStore;
use crate::error::map_sdk_error;

impl S3ObjectStore {
    pub(super) async fn get_with_tag(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(Bytes, String)>> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(map_sdk_error(&self.call("GetObject", bucket, Some(key)), e)),
        };
        let tag = out.e_tag().unwrap_or_default().to_string();
        let body = out.body.collect().await.map_err(|e| {
            Error::Unavailable(format!(
                "S3 GetObject on s3://{bucket}/{key}: the body broke off: {e}"
            ))
        })?;
        Ok(Some((body.into_bytes(), tag)))
    }

    pub(super) async fn put_conditional(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: &PutCondition,
    ) -> Result<String> {
        if body.len() as u64 > self.multipart_threshold {
            return self
                .put_multipart(bucket, key, body, content_type, Some(condition))
                .await;
        }
        let mut request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        request = match condition {
            PutCondition::IfAbsent => request.if_none_match("*"),
            PutCondition::IfMatch(tag) => request.if_match(tag),
        };
        let out = request
            .send()
            .await
            .map_err(|e| map_sdk_error(&self.call("PutObject", bucket, Some(key)), e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    pub(super) async fn ranged(
        &self,
        bucket: &str,
        key: &str,
        range: ByteRange,
    ) -> Result<Option<RangedObject>> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(range.header())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(map_sdk_error(&self.call("GetObject", bucket, Some(key)), e)),
        };
        let last_modified_ms = out
            .last_modified()
            .and_then(|t| t.to_millis().ok())
            .unwrap_or(0);
        let content_range = out.content_range().map(str::to_string);
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| {
                Error::Unavailable(format!(
                    "S3 GetObject on s3://{bucket}/{key}: the body broke off: {e}"
                ))
            })?
            .into_bytes();
        let (start, size) = match content_range.as_deref().and_then(parse_content_range) {
            Some(parsed) => parsed,
            // No Content-Range: the whole object came back (a range covering all of it).
            None => {
                let size = bytes.len() as u64;
                let r = range.resolve(size)?;
                return Ok(Some(RangedObject {
                    bytes: bytes.slice(r.start as usize..r.end as usize),
                    start: r.start,
                    size,
                    last_modified_ms,
                }));
            }
        };
        Ok(Some(RangedObject {
            bytes,
            start,
            size,
            last_modified_ms,
        }))
    }

    pub(super) async fn level(&self, bucket: &str, prefix: &str) -> Result<ObjectLevel> {
        let mut level = ObjectLevel::default();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| map_sdk_error(&self.call("ListObjectsV2", bucket, None), e))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                level.objects.push(ObjectMeta {
                    key: key.to_string(),
                    size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                    last_modified_ms: o
                        .last_modified()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or(0),
                });
            }
            level.prefixes.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        level.objects.sort_by(|a, b| a.key.cmp(&b.key));
        level.prefixes.sort();
        level.prefixes.dedup();
        Ok(level)
    }
}

/// `bytes 100-199/1000` → (100, 1000).
fn parse_content_range(header: &str) -> Option<(u64, u64)> {
    let rest = header.trim().strip_prefix("bytes")?.trim_start();
    let (span, size) = rest.split_once('/')?;
    let (start, _) = span.split_once('-')?;
    Some((start.trim().parse().ok()?, size.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_give_the_start_and_the_size() {
        assert_eq!(parse_content_range("bytes 100-199/1000"), Some((100, 1000)));
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0, 1)));
        assert_eq!(parse_content_range("bytes */1000"), None);
    }
}
