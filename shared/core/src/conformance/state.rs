//! Conformance of [`StateStore`]: namespaced round trips, atomic multi-key writes, sorted
//! prefix listings and idempotent deletes, one by one and several at once.

use bytes::Bytes;

use super::unique;
use crate::ports::StateStore;

/// Runs the state store suite in fresh namespaces.
///
/// # Panics
/// When the store breaks the [`StateStore`] contract; the message says where.
pub async fn state_store(store: &dyn StateStore) {
    let ns = unique("conformance-state");
    let other = unique("conformance-state-other");
    let get = |ns: String, key: &'static str| async move {
        store
            .get(&ns, key)
            .await
            .unwrap_or_else(|e| panic!("state store: get({ns}, {key}) failed: {e}"))
    };
    let list = |ns: String, prefix: &'static str| async move {
        store
            .list(&ns, prefix)
            .await
            .unwrap_or_else(|e| panic!("state store: list({ns}, {prefix:?}) failed: {e}"))
    };
    assert_eq!(
        get(ns.clone(), "missing").await,
        None,
        "state store: a missing key must read as None"
    );

    let binary = Bytes::from((0..=255u8).collect::<Vec<_>>());
    let entries = vec![
        (
            "alarm/i-2".to_string(),
            Bytes::from_static(b"{\"state\":\"ALARM\"}"),
        ),
        (
            "alarm/i-1".to_string(),
            Bytes::from_static(b"{\"state\":\"OK\"}"),
        ),
        ("manifest/0".to_string(), binary.clone()),
        ("alarm-x".to_string(), Bytes::new()),
    ];
    store
        .put_many(&ns, entries)
        .await
        .unwrap_or_else(|e| panic!("state store: put_many failed: {e}"));
    store
        .put_many(
            &other,
            vec![("alarm/i-1".to_string(), Bytes::from_static(b"other"))],
        )
        .await
        .unwrap_or_else(|e| panic!("state store: put_many failed: {e}"));

    assert_eq!(
        get(ns.clone(), "manifest/0").await,
        Some(binary),
        "state store: values must round trip byte for byte"
    );
    assert_eq!(
        get(ns.clone(), "alarm-x").await,
        Some(Bytes::new()),
        "state store: an empty value must read back empty, not missing"
    );
    assert_eq!(
        get(other.clone(), "alarm/i-1").await,
        Some(Bytes::from_static(b"other")),
        "state store: namespaces must not mix"
    );

    let alarms = list(ns.clone(), "alarm/").await;
    let keys: Vec<&str> = alarms.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec!["alarm/i-1", "alarm/i-2"],
        "state store: list must return the prefix's keys sorted, and only them"
    );
    assert_eq!(
        alarms[0].1,
        Bytes::from_static(b"{\"state\":\"OK\"}"),
        "state store: listed values must be the stored values"
    );
    let all: Vec<String> = list(ns.clone(), "")
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        all,
        vec!["alarm-x", "alarm/i-1", "alarm/i-2", "manifest/0"],
        "state store: list(\"\") must list the whole namespace in key order"
    );

    // Overwrite, delete, delete again.
    store
        .put_many(
            &ns,
            vec![(
                "alarm/i-1".to_string(),
                Bytes::from_static(b"{\"state\":\"ALARM\"}"),
            )],
        )
        .await
        .unwrap_or_else(|e| panic!("state store: put_many failed: {e}"));
    assert_eq!(
        get(ns.clone(), "alarm/i-1").await,
        Some(Bytes::from_static(b"{\"state\":\"ALARM\"}")),
        "state store: a put must replace the value"
    );
    store
        .delete(&ns, "alarm/i-2")
        .await
        .unwrap_or_else(|e| panic!("state store: delete failed: {e}"));
    store
        .delete(&ns, "alarm/i-2")
        .await
        .unwrap_or_else(|e| panic!("state store: deleting a missing key must not fail: {e}"));
    assert_eq!(
        get(ns.clone(), "alarm/i-2").await,
        None,
        "state store: a deleted key must read as None"
    );
    assert_eq!(
        list(ns.clone(), "alarm/").await.len(),
        1,
        "state store: a deleted key must not be listed"
    );
    assert_eq!(
        get(other.clone(), "alarm/i-1").await,
        Some(Bytes::from_static(b"other")),
        "state store: writes to one namespace must not touch another"
    );

    // Several keys at once, one of them missing; the other namespace keeps its key.
    store
        .delete_many(
            &ns,
            vec![
                "alarm/i-1".to_string(),
                "alarm/i-9".to_string(),
                "alarm-x".to_string(),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("state store: delete_many failed: {e}"));
    let left: Vec<String> = list(ns.clone(), "")
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        left,
        vec!["manifest/0"],
        "state store: delete_many must remove exactly the keys given"
    );
    assert_eq!(
        get(other, "alarm/i-1").await,
        Some(Bytes::from_static(b"other")),
        "state store: delete_many must not touch another namespace"
    );
}
