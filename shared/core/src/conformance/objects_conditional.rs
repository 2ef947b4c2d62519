//! Conformance of the [`ObjectStore`] port's conditional puts, versioned and ranged reads and
//! one-level listings (part of [`super::object_store`]).

use bytes::Bytes;

use crate::error::Error;
use crate::ports::{ByteRange, ObjectStore, PutCondition};

fn conflict<T: std::fmt::Debug>(r: crate::Result<T>, what: &str) {
    match r {
        Err(Error::Conflict(_)) => {}
        other => panic!("object store: {what} must fail with Conflict, got {other:?}"),
    }
}

/// Runs the conditional, ranged and level checks in `bucket` (which exists).
///
/// # Panics
/// When the store breaks the contract; the message says where.
pub async fn conditional_ranged_and_levels(store: &dyn ObjectStore, bucket: &str) {
    let put_if = |key: &'static str, body: &'static [u8], condition: PutCondition| async move {
        store
            .put_if(
                bucket,
                key,
                Bytes::from_static(body),
                "application/json",
                condition,
            )
            .await
    };
    let versioned = |key: &'static str| async move {
        store
            .get_versioned(bucket, key)
            .await
            .unwrap_or_else(|e| panic!("object store: get_versioned({key}) failed: {e}"))
    };

    // Create only: the first put wins, a second one changes nothing.
    let v1 = put_if("cond/manifest", b"one", PutCondition::IfAbsent)
        .await
        .unwrap_or_else(|e| panic!("object store: a create-only put of a new key failed: {e}"));
    conflict(
        put_if("cond/manifest", b"two", PutCondition::IfAbsent).await,
        "a create-only put of an existing key",
    );
    let (body, tag) = versioned("cond/manifest")
        .await
        .unwrap_or_else(|| panic!("object store: a created object must read back"));
    assert_eq!(
        (body.as_ref(), crate::ports::objects::same_tag(&tag, &v1)),
        (b"one".as_ref(), true),
        "object store: get_versioned returns the bytes and the tag the put returned"
    );

    // Replace only the version read: a stale tag loses, and changes nothing.
    let v2 = put_if("cond/manifest", b"two", PutCondition::IfMatch(v1.clone()))
        .await
        .unwrap_or_else(|e| panic!("object store: a put matching the current tag failed: {e}"));
    assert!(
        !crate::ports::objects::same_tag(&v1, &v2),
        "object store: new bytes must get a new version tag"
    );
    conflict(
        put_if("cond/manifest", b"three", PutCondition::IfMatch(v1.clone())).await,
        "a put with a stale version tag",
    );
    assert_eq!(
        versioned("cond/manifest").await.map(|(b, _)| b),
        Some(Bytes::from_static(b"two")),
        "object store: a failed conditional put must leave the object as it was"
    );
    let missing = put_if("cond/never", b"x", PutCondition::IfMatch(v2.clone())).await;
    assert!(
        missing.is_err(),
        "object store: a put conditional on a version of a missing object must fail"
    );
    assert!(
        store
            .get(bucket, "cond/never")
            .await
            .unwrap_or_else(|e| panic!("object store: get failed: {e}"))
            .is_none(),
        "object store: a failed conditional put must not create the object"
    );

    // Racing create-only puts of one key: exactly one wins.
    let race = |body: &'static [u8]| put_if("cond/race", body, PutCondition::IfAbsent);
    let (a, b, c) = tokio::join!(race(b"a"), race(b"b"), race(b"c"));
    let wins = [a.is_ok(), b.is_ok(), c.is_ok()]
        .iter()
        .filter(|w| **w)
        .count();
    assert_eq!(
        wins, 1,
        "object store: of 3 racing create-only puts exactly one must win"
    );

    // Ranged reads.
    let body: Bytes = (0..=255u8).cycle().take(10_000).collect::<Vec<_>>().into();
    store
        .put(bucket, "ranged", body.clone(), "application/octet-stream")
        .await
        .unwrap_or_else(|e| panic!("object store: put ranged failed: {e}"));
    for (range, expect) in [
        (ByteRange::Bounded { start: 10, end: 20 }, 10..20),
        (
            ByteRange::Bounded {
                start: 9_990,
                end: 20_000,
            },
            9_990..10_000,
        ),
        (ByteRange::From(9_000), 9_000..10_000),
        (ByteRange::Last(8), 9_992..10_000),
    ] {
        let got = store
            .get_range(bucket, "ranged", range)
            .await
            .unwrap_or_else(|e| panic!("object store: get_range({range}) failed: {e}"))
            .unwrap_or_else(|| panic!("object store: get_range({range}) found nothing"));
        assert_eq!(
            (got.bytes.clone(), got.start, got.size),
            (
                body.slice(expect.start..expect.end),
                expect.start as u64,
                10_000
            ),
            "object store: get_range({range}) must return exactly those bytes, their offset and the object's size"
        );
    }
    assert!(
        store
            .get_range(bucket, "no/such", ByteRange::Last(4))
            .await
            .unwrap_or_else(|e| panic!("object store: get_range of a missing key failed: {e}"))
            .is_none(),
        "object store: a ranged read of a missing key reads as None"
    );

    // One level of a listing.
    for key in [
        "lvl/top.json",
        "lvl/year=2025/month=12/a",
        "lvl/year=2026/month=01/b",
        "lvl/year=2026/month=02/c",
    ] {
        store
            .put(bucket, key, Bytes::from_static(b"."), "text/plain")
            .await
            .unwrap_or_else(|e| panic!("object store: put {key} failed: {e}"));
    }
    let level = store
        .list_level(bucket, "lvl/")
        .await
        .unwrap_or_else(|e| panic!("object store: list_level failed: {e}"));
    assert_eq!(
        (
            level
                .objects
                .iter()
                .map(|m| m.key.as_str())
                .collect::<Vec<_>>(),
            level.prefixes.clone()
        ),
        (
            vec!["lvl/top.json"],
            vec!["lvl/year=2025/".to_string(), "lvl/year=2026/".to_string()]
        ),
        "object store: list_level returns the objects directly under the prefix and one prefix per subdirectory"
    );
    let deeper = store
        .list_level(bucket, "lvl/year=2026/")
        .await
        .unwrap_or_else(|e| panic!("object store: list_level failed: {e}"));
    assert_eq!(
        deeper.prefixes,
        vec![
            "lvl/year=2026/month=01/".to_string(),
            "lvl/year=2026/month=02/".to_string()
        ],
        "object store: list_level one level deeper"
    );
}
