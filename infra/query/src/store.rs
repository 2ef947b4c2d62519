//! [`PortStore`]: `object_store`'s read side over one bucket of Shardline's
//! [`ObjectStore`](shardline_core::ports::ObjectStore) port, so DataFusion reads the Parquet
//! output on S3 through the project's own S3 client (aws-sdk-s3: ranged GetObject,
//! ListObjectsV2) instead of `object_store`'s `aws` feature, which would bring reqwest and a
//! second TLS stack (ring) into the build.
//!
//! - `get_opts` with a range is a ranged read (`get_range`); a `head` request reads the last
//!   byte to learn the size.
//! - `list_with_delimiter` is one level of a listing by `/` (`list_level`): DataFusion walks
//!   `year=/month=/day=` directories this way and prunes the partitions a query's filters
//!   exclude before listing below them.
//! - `list` lists everything under a prefix.
//! - Writes, copies and deletes are not offered: queries only read.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use shardline_core::ports::{self, ByteRange};
use std::sync::Arc;

/// The objects of one bucket of an object store port, read-only, as `object_store` sees them.
#[derive(Clone)]
pub struct PortStore {
    port: Arc<dyn ports::ObjectStore>,
    bucket: String,
}

impl std::fmt::Debug for PortStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortStore")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for PortStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortStore(s3://{})", self.bucket)
    }
}

impl PortStore {
    /// The objects of `bucket` in `port`.
    pub fn new(port: Arc<dyn ports::ObjectStore>, bucket: &str) -> Self {
        PortStore {
            port,
            bucket: bucket.to_string(),
        }
    }
}

const NAME: &str = "shardline";

fn error(e: shardline_core::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: NAME,
        source: Box::new(e),
    }
}

fn not_found(path: &Path) -> object_store::Error {
    object_store::Error::NotFound {
        path: path.to_string(),
        source: "no such object".into(),
    }
}

fn read_only(operation: &str) -> object_store::Error {
    object_store::Error::NotImplemented {
        operation: operation.to_string(),
        implementer: "shardline's query store (read-only)".to_string(),
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn meta(m: ports::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        location: Path::from(m.key),
        last_modified: time(m.last_modified_ms),
        size: m.size,
        e_tag: None,
        version: None,
    }
}

/// A listing prefix for `object_store`'s path prefix: whole segments, so `a/b` lists `a/b/...`.
fn prefix_of(prefix: Option<&Path>) -> String {
    match prefix.map(Path::as_ref) {
        Some(p) if !p.is_empty() => format!("{p}/"),
        _ => String::new(),
    }
}

#[async_trait]
impl object_store::ObjectStore for PortStore {
    async fn put_opts(
        &self,
        _location: &Path,
        _payload: PutPayload,
        _opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(read_only("put_opts"))
    }

    async fn put_multipart_opts(
        &self,
        _location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(read_only("put_multipart_opts"))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let range = match (options.head, &options.range) {
            (true, _) => ByteRange::Last(1),
            (false, None) => ByteRange::From(0),
            (false, Some(GetRange::Bounded(r))) => ByteRange::Bounded {
                start: r.start,
                end: r.end,
            },
            (false, Some(GetRange::Offset(start))) => ByteRange::From(*start),
            (false, Some(GetRange::Suffix(n))) => ByteRange::Last(*n),
        };
        let got = self
            .port
            .get_range(&self.bucket, location.as_ref(), range)
            .await
            .map_err(error)?
            .ok_or_else(|| not_found(location))?;
        let object = ObjectMeta {
            location: location.clone(),
            last_modified: time(got.last_modified_ms),
            size: got.size,
            e_tag: None,
            version: None,
        };
        let (bytes, span) = if options.head {
            (Bytes::new(), 0..got.size)
        } else {
            let end = got.start + got.bytes.len() as u64;
            (got.bytes, got.start..end)
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(
                futures::stream::once(async move { Ok(bytes) }).boxed(),
            ),
            meta: object,
            range: span,
            attributes: Attributes::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        locations.map(|_| Err(read_only("delete_stream"))).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (port, bucket, prefix) = (
            Arc::clone(&self.port),
            self.bucket.clone(),
            prefix_of(prefix),
        );
        futures::stream::once(async move { port.list(&bucket, &prefix).await })
            .flat_map(|listed| match listed {
                Ok(objects) => {
                    futures::stream::iter(objects.into_iter().map(|m| Ok(meta(m)))).boxed()
                }
                Err(e) => futures::stream::once(async move { Err(error(e)) }).boxed(),
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let level = self
            .port
            .list_level(&self.bucket, &prefix_of(prefix))
            .await
            .map_err(error)?;
        Ok(ListResult {
            common_prefixes: level
                .prefixes
                .iter()
                .map(|p| Path::from(p.trim_end_matches('/')))
                .collect(),
            objects: level.objects.into_iter().map(meta).collect(),
        })
    }

    async fn copy_opts(
        &self,
        _from: &Path,
        _to: &Path,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(read_only("copy_opts"))
    }
}
