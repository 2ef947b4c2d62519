//! Test helpers: a tiny HTTP server on 127.0.0.1 that records webhook POSTs; [`kill`]: kill -9
//! of a child writer; [`series`]: a small time-series table.
#![allow(clippy::unwrap_used, dead_code)]

pub mod kill;
pub mod series;

use std::sync::{Arc, Mutex};

use shardline_core::ports::Notification;
use shardline_local::Envelope;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One received request.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request head (request line and headers).
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

/// Records requests; answers each with the next scripted status (200 when the script is
/// used up).
pub struct WebhookServer {
    pub addr: std::net::SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookServer {
    pub async fn start(script: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head, body) = loop {
                        let n = sock.read(&mut chunk).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
                            let len: usize = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse().ok())?
                                })
                                .unwrap_or(0);
                            while buf.len() < i + 4 + len {
                                let n = sock.read(&mut chunk).await.unwrap();
                                if n == 0 {
                                    break;
                                }
                                buf.extend_from_slice(&chunk[..n]);
                            }
                            break (head, buf[i + 4..].to_vec());
                        }
                    };
                    let status = script.lock().unwrap().next().unwrap_or(200);
                    if (200..300).contains(&status) {
                        log.lock().unwrap().push(Received { head, body });
                    }
                    let reply = format!(
                        "HTTP/1.1 {status} Scripted\r\nContent-Length: 7\r\nConnection: close\r\n\r\nanswer!"
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        WebhookServer {
            addr,
            received,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/alerts", self.addr)
    }

    pub fn envelopes(&self) -> Vec<Envelope> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    pub fn notifications(&self) -> Vec<Notification> {
        self.envelopes()
            .iter()
            .map(Envelope::notification)
            .collect()
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
