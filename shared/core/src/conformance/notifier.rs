//! Conformance of [`Notifier`]: every publish is delivered once, and a notification whose
//! deduplication id was already published is not delivered again.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use super::unique;
use crate::ports::{Notification, Notifier};

/// Runs the notifier suite, publishing to `topic`.
///
/// `delivered` reads back what reached the target so far (an outbox file, a webhook's
/// received bodies, a queue subscribed to the topic), in any order. The suite only looks at
/// notifications whose subject carries its own run tag, so other traffic is ignored. Delivery
/// may be asynchronous: the suite polls `delivered` for up to 5 seconds.
///
/// # Panics
/// When the notifier breaks the [`Notifier`] contract; the message says where.
pub async fn notifier<F, Fut>(notifier: &dyn Notifier, topic: &str, delivered: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<Notification>>,
{
    let tag = unique("conformance");
    let make = |name: &str, message: &str, dedup: Option<&str>| Notification {
        topic: topic.to_string(),
        subject: format!("{tag} {name}"),
        message: message.to_string(),
        attributes: BTreeMap::from([("severity".to_string(), "high".to_string())]),
        deduplication_id: dedup.map(|d| format!("{tag}-{d}")),
    };
    let publish = |n: Notification| async move {
        notifier
            .publish(&n)
            .await
            .unwrap_or_else(|e| panic!("notifier: publish of {:?} failed: {e}", n.subject))
    };

    let a = make("alarm", "cpu_utilization 93.2 > 90 on i-1", Some("a"));
    let b = make(
        "recovered",
        "cpu_utilization back to 41.0 on i-1",
        Some("b"),
    );
    let id_a = publish(a.clone()).await;
    let id_b = publish(b.clone()).await;
    assert!(
        !id_a.is_empty() && !id_b.is_empty(),
        "notifier: publish must return a message id"
    );
    assert_ne!(
        id_a, id_b,
        "notifier: different notifications must get different message ids"
    );
    // A replay publishes `a` again: accepted, not delivered.
    let again = publish(a.clone()).await;
    assert!(
        !again.is_empty(),
        "notifier: a deduplicated publish must still return a message id"
    );
    // Without a deduplication id, each publish is delivered.
    let c1 = make("heartbeat", "pipeline healthy (1)", None);
    let c2 = make("heartbeat", "pipeline healthy (2)", None);
    publish(c1.clone()).await;
    publish(c2.clone()).await;

    let mut expected: Vec<(String, String)> = [&a, &b, &c1, &c2]
        .iter()
        .map(|n| (n.subject.clone(), n.message.clone()))
        .collect();
    expected.sort();
    let mut ours = Vec::new();
    for _ in 0..50 {
        ours = delivered()
            .await
            .into_iter()
            .filter(|n| n.subject.starts_with(&tag))
            .collect::<Vec<_>>();
        if ours.len() >= expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in &ours {
        assert_eq!(
            n.attributes.get("severity").map(String::as_str),
            Some("high"),
            "notifier: attributes must be delivered: {n:?}"
        );
    }
    let mut got: Vec<(String, String)> = ours.into_iter().map(|n| (n.subject, n.message)).collect();
    got.sort();
    assert_eq!(
        got, expected,
        "notifier: each notification must be delivered exactly once, and a repeated deduplication id not at all"
    );
}
