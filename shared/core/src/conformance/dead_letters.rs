//! Conformance of [`DeadLetterStore`]: idempotent puts, oldest-first listings, counts, exact
//! bytes. Letters are dead-lettered "now": stores may drop letters past their retention.

use bytes::Bytes;

use super::{seq, unique};
use crate::ShardId;
use crate::ports::{DeadLetter, DeadLetterStore};

/// When the suite first ran in this process (letters' times are this plus a few ms).
fn suite_start_ms() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *START.get_or_init(crate::time::now_ms)
}

fn letter(consumer: &str, shard: u32, offset: u64, reason: &str, at: i64) -> DeadLetter {
    DeadLetter {
        consumer: consumer.to_string(),
        stream: "metrics".to_string(),
        shard: ShardId(shard),
        sequence_number: seq(shard, offset),
        partition_key: format!("i-{offset}"),
        reason: reason.to_string(),
        data: Bytes::from(format!("{{\"bad\":{offset}}}")),
        at_ms: suite_start_ms() + at,
    }
}

/// Runs the dead-letter store suite with fresh consumer names.
///
/// # Panics
/// When the store breaks the [`DeadLetterStore`] contract; the message says where.
pub async fn dead_letter_store(store: &dyn DeadLetterStore) {
    let consumer = unique("conformance-dlq");
    let other = unique("conformance-dlq-other");
    let count = |c: String| async move {
        store
            .count(Some(&c))
            .await
            .unwrap_or_else(|e| panic!("dead letters: count failed: {e}"))
    };
    let list = |c: String| async move {
        store
            .list(Some(&c))
            .await
            .unwrap_or_else(|e| panic!("dead letters: list failed: {e}"))
    };
    assert_eq!(
        count(consumer.clone()).await,
        0,
        "dead letters: a new consumer must have none"
    );
    assert!(
        list(consumer.clone()).await.is_empty(),
        "dead letters: a new consumer must list none"
    );

    let first = vec![
        letter(&consumer, 1, 7, "value is not a number", 1),
        letter(&consumer, 0, 3, "unknown metric_type \"gpu\"", 2),
        letter(&consumer, 0, 9, "timestamp missing", 3),
    ];
    store
        .put(first.clone())
        .await
        .unwrap_or_else(|e| panic!("dead letters: put failed: {e}"));
    let total_before = store
        .count(None)
        .await
        .unwrap_or_else(|e| panic!("dead letters: count(None) failed: {e}"));
    // A replay delivers the same records again, plus a new one.
    let mut replay = first.clone();
    replay.push(letter(&consumer, 2, 1, "not JSON", 4));
    store
        .put(replay)
        .await
        .unwrap_or_else(|e| panic!("dead letters: repeated put failed: {e}"));
    store
        .put(vec![letter(&other, 0, 3, "elsewhere", 5)])
        .await
        .unwrap_or_else(|e| panic!("dead letters: put failed: {e}"));

    assert_eq!(
        count(consumer.clone()).await,
        4,
        "dead letters: putting a letter again must not store it twice"
    );
    assert_eq!(
        count(other.clone()).await,
        1,
        "dead letters: counts must be per consumer"
    );
    let total_after = store
        .count(None)
        .await
        .unwrap_or_else(|e| panic!("dead letters: count(None) failed: {e}"));
    assert_eq!(
        total_after - total_before,
        2,
        "dead letters: count(None) must count every consumer's new letters once"
    );

    let listed = list(consumer.clone()).await;
    let mut expected = first;
    expected.push(letter(&consumer, 2, 1, "not JSON", 4));
    assert_eq!(
        listed, expected,
        "dead letters: list must return each letter once, whole, oldest first"
    );
    // The exact bytes come back, whether or not they are UTF-8.
    let mut binary = letter(&other, 3, 11, "malformed: invalid UTF-8", 6);
    binary.data = Bytes::from_static(b"{\"v\":\"\xff\xfe\x00\"}\r\n");
    store
        .put(vec![binary.clone()])
        .await
        .unwrap_or_else(|e| panic!("dead letters: put of non-UTF-8 data failed: {e}"));
    assert_eq!(
        list(other.clone()).await.last(),
        Some(&binary),
        "dead letters: data that is not UTF-8 must come back byte for byte"
    );
    let everything = store
        .list(None)
        .await
        .unwrap_or_else(|e| panic!("dead letters: list(None) failed: {e}"));
    let ours = everything
        .iter()
        .filter(|l| l.consumer == consumer || l.consumer == other)
        .count();
    assert_eq!(
        ours, 6,
        "dead letters: list(None) must include every consumer's letters"
    );
}
