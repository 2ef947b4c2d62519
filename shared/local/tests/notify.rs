//! Notifier targets: webhook status handling, timeouts, https and header escaping,
//! deduplication that survives restarts, outbox recovery, stdout rendering and configuration.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardline_core::ports::{Notification, Notifier};
use shardline_core::{Error, RetryClass};
use shardline_local::{
    NotifierConfig, OutboxNotifier, StdoutNotifier, WebhookNotifier, WebhookOptions, build_notifier,
};

fn note(subject: &str, dedup: Option<&str>) -> Notification {
    Notification {
        topic: "infra-alerts".into(),
        subject: subject.into(),
        message: format!("{subject}: cpu_utilization 93.2 > 90"),
        attributes: BTreeMap::from([("severity".into(), "high".into())]),
        deduplication_id: dedup.map(String::from),
    }
}

#[tokio::test]
async fn webhook_posts_json_with_ids_in_headers() {
    let server = common::WebhookServer::start(vec![]).await;
    let hook = WebhookNotifier::new(&server.url(), Duration::from_secs(5), None).unwrap();
    let id = hook
        .publish(&note("ALARM i-1", Some("alarm-i-1-1")))
        .await
        .unwrap();
    let received = server.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let head = &received[0].head;
    assert!(
        head.starts_with("POST /hooks/alerts HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("Content-Type: application/json"), "{head}");
    assert!(
        head.contains(&format!("X-Shardline-Message-Id: {id}")),
        "{head}"
    );
    assert!(
        head.contains("X-Shardline-Deduplication-Id: alarm-i-1-1"),
        "{head}"
    );
    let envelope = &server.envelopes()[0];
    assert_eq!(envelope.message_id, id);
    assert_eq!(
        envelope.notification(),
        note("ALARM i-1", Some("alarm-i-1-1"))
    );
    uuid_v4(&id);
}

fn uuid_v4(id: &str) {
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(&id[14..15], "4", "not a v4 uuid: {id}");
}

#[tokio::test]
async fn webhook_statuses_map_to_retry_classes_and_failed_sends_are_not_deduplicated() {
    let server = common::WebhookServer::start(vec![503, 429, 200, 404]).await;
    let hook = WebhookNotifier::new(&server.url(), Duration::from_secs(5), None).unwrap();
    let n = note("ALARM", Some("d1"));
    let e = hook.publish(&n).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    assert!(e.to_string().contains("503"), "{e}");
    let e = hook.publish(&n).await.unwrap_err();
    assert!(matches!(e, Error::Throttled(_)), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::Retryable);
    // The third try is delivered; a fourth publish of the same id is not sent at all.
    let id = hook.publish(&n).await.unwrap();
    assert_eq!(hook.publish(&n).await.unwrap(), id);
    assert_eq!(server.envelopes().len(), 1);
    // The scripted 404 now hits a new notification: permanent.
    let e = hook.publish(&note("other", None)).await.unwrap_err();
    assert_eq!(e.retry_class(), RetryClass::Permanent, "{e:?}");
    assert!(e.to_string().contains("404"), "{e}");
}

#[tokio::test]
async fn webhook_times_out_and_refused_connections_are_retryable() {
    // A server that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let hook =
        WebhookNotifier::new(&format!("http://{addr}/"), Duration::from_millis(300), None).unwrap();
    // The notifier's own timeout must end the call; the outer bound only keeps a broken one
    // from hanging the test.
    let e = tokio::time::timeout(Duration::from_secs(60), hook.publish(&note("x", None)))
        .await
        .expect("the webhook timeout never fired")
        .unwrap_err();
    assert!(e.to_string().contains("did not answer within 300ms"), "{e}");
    assert_eq!(e.retry_class(), RetryClass::Retryable);
    // Over https the same silent server stalls the handshake: the connect timeout ends it,
    // well before the request timeout.
    let hook = WebhookNotifier::with_options(
        &format!("https://{addr}/"),
        WebhookOptions {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_millis(200),
            ca_file: Some(test_ca()),
            ..WebhookOptions::default()
        },
        None,
    )
    .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(60), hook.publish(&note("x", None)))
        .await
        .expect("the connect timeout never fired")
        .unwrap_err();
    assert!(
        e.to_string().contains("could not connect within 200ms"),
        "{e}"
    );
    assert_eq!(e.retry_class(), RetryClass::Retryable);
    silent.abort();

    // Nothing listens on a port just released.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hook =
        WebhookNotifier::new(&format!("http://{free}/"), Duration::from_secs(2), None).unwrap();
    let e = hook.publish(&note("x", None)).await.unwrap_err();
    assert_eq!(e.retry_class(), RetryClass::Retryable, "{e:?}");
}

fn test_ca() -> std::path::PathBuf {
    common::fixtures().join("tls").join("ca.pem")
}

#[tokio::test]
async fn https_webhooks_verify_the_server_against_the_trusted_roots() {
    let server = common::WebhookServer::start_tls(vec![]).await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let options = WebhookOptions {
        ca_file: Some(test_ca()),
        ..WebhookOptions::default()
    };
    let hook = WebhookNotifier::with_options(&server.url(), options, None).unwrap();
    let id = hook.publish(&note("ALARM i-1", Some("d-1"))).await.unwrap();
    let envelopes = server.envelopes();
    assert_eq!(envelopes.len(), 1);
    assert_eq!(envelopes[0].message_id, id);
    assert_eq!(envelopes[0].notification(), note("ALARM i-1", Some("d-1")));
    let head = server.received.lock().unwrap()[0].head.clone();
    assert!(
        head.contains(&format!("Host: 127.0.0.1:{}", server.addr.port())),
        "{head}"
    );

    // Without the test CA the operating system's roots do not vouch for the server: the
    // handshake fails (retryable: certificates get fixed) and nothing is delivered.
    let untrusted = WebhookNotifier::new(&server.url(), Duration::from_secs(5), None);
    if let Ok(untrusted) = untrusted {
        let e = untrusted.publish(&note("other", None)).await.unwrap_err();
        assert!(e.to_string().contains("TLS handshake failed"), "{e}");
        assert_eq!(e.retry_class(), RetryClass::Retryable);
    } else if let Err(e) = untrusted {
        // A machine without any OS roots is told how to add some.
        assert!(
            e.to_string().contains("no trusted root certificates"),
            "{e}"
        );
    }
    assert_eq!(server.envelopes().len(), 1);

    // In configuration, ca_file is relative to the data directory, and http:// has no use
    // for it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(test_ca(), dir.path().join("ca.pem")).unwrap();
    let cfg: NotifierConfig = serde_json::from_str(&format!(
        r#"{{"type":"webhook","url":"{}","connect_timeout":"2s","ca_file":"ca.pem"}}"#,
        server.url()
    ))
    .unwrap();
    build_notifier(&cfg, dir.path())
        .unwrap()
        .publish(&note("ALARM i-2", None))
        .await
        .unwrap();
    assert_eq!(server.envelopes().len(), 2);
    let cfg: NotifierConfig = serde_json::from_str(
        r#"{"type":"webhook","url":"http://127.0.0.1:9/","ca_file":"ca.pem"}"#,
    )
    .unwrap();
    let err = build_notifier(&cfg, dir.path()).err().unwrap();
    assert!(err.to_string().contains("https:// URLs only"), "{err}");
    let cfg: NotifierConfig = serde_json::from_str(
        r#"{"type":"webhook","url":"https://127.0.0.1:9/","ca_file":"missing.pem"}"#,
    )
    .unwrap();
    let err = build_notifier(&cfg, dir.path()).err().unwrap();
    assert!(err.to_string().contains("missing.pem"), "{err}");
}

#[tokio::test]
async fn record_fields_cannot_inject_headers() {
    // The deduplication id of an alarm carries the instance id: one with CR/LF in it.
    let evil = "alarm-i-1\r\nX-Injected: yes\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1";
    for server in [
        common::WebhookServer::start(vec![]).await,
        common::WebhookServer::start_tls(vec![]).await,
    ] {
        let options = WebhookOptions {
            ca_file: server.url().starts_with("https").then(test_ca),
            ..WebhookOptions::default()
        };
        let hook = WebhookNotifier::with_options(&server.url(), options, None).unwrap();
        let mut n = note("ALARM i-1\r\nX-Subject: no", Some(evil));
        n.attributes
            .insert("instance\r\nX-Attr".into(), "v\r\n".into());
        hook.publish(&n).await.unwrap();
        let received = server.received.lock().unwrap().clone();
        assert_eq!(received.len(), 1, "one request, not a smuggled second one");
        let head = &received[0].head;
        for line in head.split("\r\n").skip(1) {
            let name = line.split(':').next().unwrap();
            assert!(
                [
                    "Host",
                    "User-Agent",
                    "Content-Type",
                    "Content-Length",
                    "Connection",
                    "X-Shardline-Message-Id",
                    "X-Shardline-Deduplication-Id"
                ]
                .contains(&name),
                "unexpected header line {line:?} in {head}"
            );
        }
        assert!(
            head.contains(
                "X-Shardline-Deduplication-Id: alarm-i-1%0D%0AX-Injected:%20yes%0D%0A\
                 Content-Length:%200%0D%0A%0D%0AGET%20/%20HTTP/1.1"
            ),
            "{head}"
        );
        // The body (JSON) carries every field exactly.
        assert_eq!(server.notifications(), vec![n]);
    }
}

#[tokio::test]
async fn webhook_deduplication_survives_a_restart_with_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("sent.jsonl");
    let server = common::WebhookServer::start(vec![]).await;
    let first_id = {
        let hook =
            WebhookNotifier::new(&server.url(), Duration::from_secs(5), Some(&ledger)).unwrap();
        hook.publish(&note("ALARM", Some("alarm-1"))).await.unwrap()
    };
    let hook = WebhookNotifier::new(&server.url(), Duration::from_secs(5), Some(&ledger)).unwrap();
    assert_eq!(
        hook.publish(&note("ALARM", Some("alarm-1"))).await.unwrap(),
        first_id
    );
    hook.publish(&note("ALARM", Some("alarm-2"))).await.unwrap();
    let subjects: Vec<String> = server
        .envelopes()
        .into_iter()
        .map(|e| e.deduplication_id.unwrap())
        .collect();
    assert_eq!(subjects, vec!["alarm-1", "alarm-2"]);
}

#[tokio::test]
async fn outbox_rebuilds_dedup_ids_and_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    {
        let outbox = OutboxNotifier::open(&path).unwrap();
        outbox.publish(&note("a", Some("a"))).await.unwrap();
        outbox.publish(&note("b", None)).await.unwrap();
    }
    // A crash in the middle of an append leaves half a line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"message_id":"x","topic":"t","sub"#)
        .unwrap();
    drop(f);
    let outbox = OutboxNotifier::open(&path).unwrap();
    outbox.publish(&note("a", Some("a"))).await.unwrap();
    outbox.publish(&note("c", Some("c"))).await.unwrap();
    let subjects: Vec<String> = OutboxNotifier::read_all(&path)
        .unwrap()
        .into_iter()
        .map(|e| e.subject)
        .collect();
    assert_eq!(subjects, vec!["a", "b", "c"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.ends_with('\n'));
}

#[test]
fn outbox_refuses_a_damaged_middle_line_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    std::fs::write(
        &path,
        "not json\n{\"message_id\":\"m\",\"deduplication_id\":null}\n",
    )
    .unwrap();
    let err = OutboxNotifier::open(&path).unwrap_err();
    match err {
        Error::Corrupt { file, offset, .. } => assert_eq!((file, offset), (path, 0)),
        other => panic!("{other:?}"),
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn stdout_prints_one_block_per_notification_once() {
    let out = Captured::default();
    let stdout = StdoutNotifier::with_writer(Box::new(out.clone()), None).unwrap();
    let id = stdout.publish(&note("ALARM i-1", Some("d"))).await.unwrap();
    assert_eq!(
        stdout.publish(&note("ALARM i-1", Some("d"))).await.unwrap(),
        id
    );
    stdout.publish(&note("OK i-1", None)).await.unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("── notification ").count(), 2, "{text}");
    assert!(text.contains(&format!("── notification {id}")), "{text}");
    assert!(text.contains("subject: ALARM i-1\n"), "{text}");
    assert!(text.contains("attr:    severity = high\n"), "{text}");
    assert!(
        text.contains("\nALARM i-1: cpu_utilization 93.2 > 90\n\n"),
        "{text}"
    );
}

#[tokio::test]
async fn notifier_config_builds_targets_under_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cfg: NotifierConfig = serde_json::from_str(
        r#"{"type":"fanout","targets":[{"type":"outbox","path":"alerts.jsonl"},{"type":"stdout"}]}"#,
    )
    .unwrap();
    let notifier = build_notifier(&cfg, dir.path()).unwrap();
    notifier.publish(&note("ALARM", Some("x"))).await.unwrap();
    notifier.publish(&note("ALARM", Some("x"))).await.unwrap();
    assert_eq!(
        OutboxNotifier::read_all(&dir.path().join("alerts.jsonl"))
            .unwrap()
            .len(),
        1
    );
    let ledger =
        std::fs::read_to_string(dir.path().join("local/notify/stdout-sent.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 1, "{ledger}");

    let webhook: NotifierConfig =
        serde_json::from_str(r#"{"type":"webhook","url":"http://127.0.0.1:9/","timeout":"250ms"}"#)
            .unwrap();
    assert_eq!(
        webhook,
        NotifierConfig::Webhook {
            url: "http://127.0.0.1:9/".into(),
            timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(3),
            ca_file: None,
        }
    );
    let err =
        serde_json::from_str::<NotifierConfig>(r#"{"type":"stdout","colour":true}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
    let err = serde_json::from_str::<NotifierConfig>(
        r#"{"type":"webhook","url":"http://x/","timeout":"soon"}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`soon` is not a duration"),
        "{err}"
    );
    let empty = NotifierConfig::Fanout { targets: vec![] };
    let err = build_notifier(&empty, dir.path()).err().unwrap();
    assert!(err.to_string().contains("at least one"), "{err}");
}

#[test]
fn console_targets_move_to_standard_error_and_keep_the_rest() {
    let config: NotifierConfig = serde_json::from_str(
        r#"{"type":"fanout","targets":[{"type":"stdout"},{"type":"outbox"},
            {"type":"fanout","targets":[{"type":"stdout"}]}]}"#,
    )
    .unwrap();
    assert_eq!(
        config.stdout_to_stderr(),
        NotifierConfig::Fanout {
            targets: vec![
                NotifierConfig::Stderr {},
                NotifierConfig::Outbox { path: None },
                NotifierConfig::Fanout {
                    targets: vec![NotifierConfig::Stderr {}]
                },
            ]
        }
    );
    let stderr: NotifierConfig = serde_json::from_str(r#"{"type":"stderr"}"#).unwrap();
    assert_eq!(stderr, NotifierConfig::Stderr {});
    let dir = tempfile::tempdir().unwrap();
    build_notifier(&stderr, dir.path()).expect("a stderr notifier");
}
