//! The [`ObjectStore`] port on S3.
//!
//! - `put`: one PutObject up to `s3.multipart_threshold`, else a multipart upload in parts of
//!   `s3.part_size` (aborted if any part fails, so no half object and no billed leftovers).
//!   Either way S3 makes the object visible whole, or not at all.
//! - `get`: GetObject; a missing key is `None`.
//! - `list`: ListObjectsV2 by prefix, every page; S3 lists keys in UTF-8 byte order.
//! - `delete`: DeleteObject; S3 answers success for a missing key too.
//! - `ensure_bucket`: HeadBucket, else CreateBucket (with the region as LocationConstraint
//!   outside us-east-1, as S3 requires); a bucket we already own is fine.
//!
//! - `put_if`, `get_versioned`, `get_range`, `list_level`: conditional puts, ETags, ranged
//!   reads and one-level listings (see [`versions`]).
//!
//! Path-style addressing (`endpoint/bucket/key`) is the `s3.force_path_style` option; the
//! SDK uses it by itself for endpoints given as IP addresses.

mod versions;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
};
use bytes::Bytes;
use shardline_core::ports::{
    ByteRange, ObjectLevel, ObjectMeta, ObjectStore, PutCondition, RangedObject,
};
use shardline_core::{Error, Result};
use tracing::{debug, warn};

use crate::client::AwsClients;
use crate::error::{Call, Service, map_sdk_error};

/// S3 as an [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: aws_sdk_s3::Client,
    region: String,
    multipart_threshold: u64,
    part_size: u64,
}

/// S3's smallest part (all but the last).
const MIN_PART: u64 = 5 * 1024 * 1024;

impl S3ObjectStore {
    /// The adapter over the clients' S3 client.
    pub fn new(clients: &AwsClients) -> Self {
        S3ObjectStore {
            client: clients.s3.clone(),
            region: clients.region.clone(),
            multipart_threshold: clients.config.s3.multipart_threshold,
            part_size: clients.config.s3.part_size.max(MIN_PART),
        }
    }

    fn call(&self, action: &'static str, bucket: &str, key: Option<&str>) -> Call<'_> {
        Call {
            service: Service::S3,
            action,
            target: match key {
                Some(k) => format!("s3://{bucket}/{k}"),
                None => format!("bucket \"{bucket}\""),
            },
            region: &self.region,
        }
    }

    /// Whether `bucket` exists and is reachable with these credentials (HeadBucket).
    ///
    /// # Errors
    /// The SDK's, mapped (a bucket of another account is access denied).
    pub async fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(map_sdk_error(&self.call("HeadBucket", bucket, None), e)),
        }
    }

    /// Whether `bucket/key` exists (HeadObject: no body is read).
    ///
    /// # Errors
    /// The SDK's, mapped.
    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(map_sdk_error(
                &self.call("HeadObject", bucket, Some(key)),
                e,
            )),
        }
    }

    async fn put_multipart(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: Option<&PutCondition>,
    ) -> Result<String> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| {
                map_sdk_error(&self.call("CreateMultipartUpload", bucket, Some(key)), e)
            })?;
        let upload_id = created.upload_id().ok_or_else(|| {
            Error::Internal(format!(
                "S3 CreateMultipartUpload on s3://{bucket}/{key}: no upload id in the answer"
            ))
        })?;
        let uploaded = self.upload_parts(bucket, key, upload_id, &body).await;
        let parts = match uploaded {
            Ok(parts) => parts,
            Err(e) => {
                self.abort_upload(bucket, key, upload_id).await;
                return Err(e);
            }
        };
        let count = parts.len();
        let mut complete = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        complete = match condition {
            None => complete,
            Some(PutCondition::IfAbsent) => complete.if_none_match("*"),
            Some(PutCondition::IfMatch(tag)) => complete.if_match(tag),
        };
        let completed = complete.send().await;
        let out = match completed {
            Ok(out) => out,
            Err(e) => {
                let err =
                    map_sdk_error(&self.call("CompleteMultipartUpload", bucket, Some(key)), e);
                // A refused condition leaves the upload open: abort it (no billed parts).
                self.abort_upload(bucket, key, upload_id).await;
                return Err(err);
            }
        };
        debug!(
            bucket,
            key,
            bytes = body.len(),
            parts = count,
            "multipart upload complete"
        );
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    /// Aborts a multipart upload that will not complete (no billed parts left behind); when S3
    /// refuses, says so: a lifecycle rule for incomplete uploads removes it later.
    async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        if let Err(abort) = aborted {
            warn!(bucket, key, upload_id, error = %map_sdk_error(&self.call("AbortMultipartUpload", bucket, Some(key)), abort), "multipart upload left behind; a lifecycle rule for incomplete uploads removes it");
        }
    }

    async fn upload_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        body: &Bytes,
    ) -> Result<Vec<CompletedPart>> {
        let part = usize::try_from(self.part_size).unwrap_or(usize::MAX);
        let mut parts = Vec::new();
        for (i, start) in (0..body.len()).step_by(part).enumerate() {
            let number = i32::try_from(i + 1).map_err(|_| {
                Error::InvalidArgument(format!(
                    "s3://{bucket}/{key}: too many parts; raise `aws.s3.part_size`"
                ))
            })?;
            let chunk = body.slice(start..(start + part).min(body.len()));
            let out = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk))
                .send()
                .await
                .map_err(|e| map_sdk_error(&self.call("UploadPart", bucket, Some(key)), e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
        }
        Ok(parts)
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn ensure_bucket(&self, bucket: &str) -> Result<()> {
        let head = self.client.head_bucket().bucket(bucket).send().await;
        match head {
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
            Err(e) => return Err(map_sdk_error(&self.call("HeadBucket", bucket, None), e)),
        }
        let mut create = self.client.create_bucket().bucket(bucket);
        if self.region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
            {
                Ok(())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_bucket_already_exists()) =>
            {
                Err(Error::AlreadyExists {
                    what: format!(
                        "S3 bucket \"{bucket}\" (owned by another account; bucket names are global: choose another)"
                    ),
                })
            }
            Err(e) => Err(map_sdk_error(&self.call("CreateBucket", bucket, None), e)),
        }
    }

    async fn put(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) -> Result<()> {
        if body.len() as u64 > self.multipart_threshold {
            return self
                .put_multipart(bucket, key, body, content_type, None)
                .await
                .map(|_| ());
        }
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| map_sdk_error(&self.call("PutObject", bucket, Some(key)), e))?;
        Ok(())
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>> {
        Ok(self
            .get_with_tag(bucket, key)
            .await?
            .map(|(body, _tag)| body))
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| map_sdk_error(&self.call("ListObjectsV2", bucket, None), e))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                out.push(ObjectMeta {
                    key: key.to_string(),
                    size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                    last_modified_ms: o
                        .last_modified()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or(0),
                });
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_sdk_error(&self.call("DeleteObject", bucket, Some(key)), e))?;
        Ok(())
    }

    async fn get_versioned(&self, bucket: &str, key: &str) -> Result<Option<(Bytes, String)>> {
        self.get_with_tag(bucket, key).await
    }

    async fn put_if(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<String> {
        self.put_conditional(bucket, key, body, content_type, &condition)
            .await
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: ByteRange,
    ) -> Result<Option<RangedObject>> {
        self.ranged(bucket, key, range).await
    }

    async fn list_level(&self, bucket: &str, prefix: &str) -> Result<ObjectLevel> {
        self.level(bucket, prefix).await
    }
}
