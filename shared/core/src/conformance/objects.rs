//! Conformance of [`ObjectStore`]: atomic whole-object puts, exact reads, sorted prefix
//! listings, idempotent deletes; then conditional puts, ranged reads and one-level listings
//! (`objects_conditional`).

use bytes::Bytes;

use super::unique;
use crate::ports::ObjectStore;

/// Runs the object store suite in a fresh bucket.
///
/// # Panics
/// When the store breaks the [`ObjectStore`] contract; the message says where.
pub async fn object_store(store: &dyn ObjectStore) {
    let bucket = unique("conformance");
    store
        .ensure_bucket(&bucket)
        .await
        .unwrap_or_else(|e| panic!("object store: ensure_bucket({bucket}) failed: {e}"));
    store
        .ensure_bucket(&bucket)
        .await
        .unwrap_or_else(|e| panic!("object store: ensure_bucket must be idempotent: {e}"));

    let ok = |r: crate::Result<()>, what: &str| {
        if let Err(e) = r {
            panic!("object store: {what} failed: {e}");
        }
    };
    let get = |key: &'static str| {
        let bucket = bucket.clone();
        async move {
            store
                .get(&bucket, key)
                .await
                .unwrap_or_else(|e| panic!("object store: get({key}) failed: {e}"))
        }
    };

    assert_eq!(
        get("missing/object").await,
        None,
        "object store: a missing key must read as None"
    );

    // Round trips: binary, empty, overwrite.
    let binary: Bytes = (0..=255u8).cycle().take(70_000).collect::<Vec<_>>().into();
    ok(
        store
            .put(&bucket, "a/bin", binary.clone(), "application/octet-stream")
            .await,
        "put a/bin",
    );
    assert_eq!(
        get("a/bin").await,
        Some(binary.clone()),
        "object store: get must return the exact bytes put"
    );
    ok(
        store
            .put(&bucket, "a/empty", Bytes::new(), "text/plain")
            .await,
        "put of an empty object",
    );
    assert_eq!(
        get("a/empty").await,
        Some(Bytes::new()),
        "object store: an empty object must read back empty, not missing"
    );
    ok(
        store
            .put(&bucket, "a/bin", Bytes::from_static(b"v2"), "text/plain")
            .await,
        "overwrite a/bin",
    );
    assert_eq!(
        get("a/bin").await,
        Some(Bytes::from_static(b"v2")),
        "object store: a put must replace the whole object"
    );

    // Listing: sorted by key, filtered by prefix (including a prefix ending mid-segment).
    let keys = [
        "metrics/year=2026/month=11/day=26/shard-1.parquet",
        "metrics/year=2026/month=11/day=25/shard-0.parquet",
        "metrics/year=2026/month=10/day=01/shard-0.parquet",
        "metrics/year=2025/month=12/day=31/shard-0.parquet",
        "metricsx/other",
    ];
    for (i, key) in keys.iter().enumerate() {
        let body = Bytes::from(vec![b'x'; 10 + i]);
        ok(
            store
                .put(&bucket, key, body, "application/octet-stream")
                .await,
            key,
        );
    }
    let list = |prefix: &'static str| {
        let bucket = bucket.clone();
        async move {
            store
                .list(&bucket, prefix)
                .await
                .unwrap_or_else(|e| panic!("object store: list({prefix:?}) failed: {e}"))
        }
    };
    let listed = list("metrics/").await;
    let listed_keys: Vec<&str> = listed.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        listed_keys,
        vec![
            "metrics/year=2025/month=12/day=31/shard-0.parquet",
            "metrics/year=2026/month=10/day=01/shard-0.parquet",
            "metrics/year=2026/month=11/day=25/shard-0.parquet",
            "metrics/year=2026/month=11/day=26/shard-1.parquet",
        ],
        "object store: list(\"metrics/\") must return exactly the keys under it, sorted"
    );
    let sizes: Vec<u64> = listed.iter().map(|m| m.size).collect();
    assert_eq!(
        sizes,
        vec![13, 12, 11, 10],
        "object store: listed sizes must be the object sizes"
    );
    let partial: Vec<String> = list("metrics/year=2026/month=1")
        .await
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        partial,
        vec![
            "metrics/year=2026/month=10/day=01/shard-0.parquet".to_string(),
            "metrics/year=2026/month=11/day=25/shard-0.parquet".to_string(),
            "metrics/year=2026/month=11/day=26/shard-1.parquet".to_string(),
        ],
        "object store: a prefix ending inside a path segment must match like a string prefix"
    );
    let all = list("").await;
    assert_eq!(
        all.len(),
        7,
        "object store: list(\"\") must list every object: {all:?}"
    );
    assert!(
        list("nothing/here").await.is_empty(),
        "object store: an unmatched prefix lists nothing"
    );

    // Deletes: idempotent, and gone from get and list.
    ok(store.delete(&bucket, keys[0]).await, "delete");
    ok(
        store.delete(&bucket, keys[0]).await,
        "delete of a deleted object (must not be an error)",
    );
    ok(
        store.delete(&bucket, "never/existed").await,
        "delete of a missing object (must not be an error)",
    );
    assert_eq!(
        get("metrics/year=2026/month=11/day=26/shard-1.parquet").await,
        None,
        "object store: a deleted object must read as None"
    );
    assert_eq!(
        list("metrics/").await.len(),
        3,
        "object store: a deleted object must not be listed"
    );

    // A local path, where offered, holds the object's bytes.
    if let Some(path) = store.local_path(&bucket, "a/bin") {
        let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "object store: local_path {} unreadable: {e}",
                path.display()
            )
        });
        assert_eq!(
            on_disk, b"v2",
            "object store: local_path must point at the object's bytes"
        );
    }

    // Readers racing a writer see one whole version, never a mix or a prefix.
    let size = 512 * 1024;
    let (va, vb) = (Bytes::from(vec![b'a'; size]), Bytes::from(vec![b'b'; size]));
    ok(
        store
            .put(&bucket, "race", va.clone(), "application/octet-stream")
            .await,
        "put race",
    );
    let writer = async {
        for i in 0..12 {
            let body = if i % 2 == 0 { vb.clone() } else { va.clone() };
            ok(
                store
                    .put(&bucket, "race", body, "application/octet-stream")
                    .await,
                "put race",
            );
        }
    };
    let reader = async {
        for _ in 0..24 {
            let body = get("race").await.unwrap_or_else(|| {
                panic!("object store: an object being overwritten must never read as missing")
            });
            let whole = body.len() == size
                && (body.iter().all(|&b| b == b'a') || body.iter().all(|&b| b == b'b'));
            assert!(
                whole,
                "object store: a reader saw a partial or mixed object ({} bytes) during an overwrite",
                body.len()
            );
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(writer, reader);

    super::objects_conditional::conditional_ranged_and_levels(store, &bucket).await;
}
