//! Test helpers: a tiny HTTP server on 127.0.0.1 that records webhook POSTs; [`kill`]: kill -9
//! of a child writer; [`series`]: a small time-series table.
#![allow(clippy::unwrap_used, dead_code)]

pub mod kill;
pub mod series;

use std::sync::{Arc, Mutex};

use shardline_core::ports::Notification;
use shardline_local::Envelope;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
    scheme: &'static str,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookServer {
    pub async fn start(script: Vec<u16>) -> Self {
        Self::serve(script, None).await
    }

    /// The same server behind TLS, with the test certificate of `tests/fixtures/tls`
    /// (`localhost` and `127.0.0.1`, signed by `ca.pem`).
    pub async fn start_tls(script: Vec<u16>) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = fixtures().join("tls");
        let certs = CertificateDer::pem_file_iter(dir.join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Self::serve(
            script,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    async fn serve(script: Vec<u16>, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (log, script, tls) = (log.clone(), script.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => answer(sock, log, script).await,
                        Some(acceptor) => {
                            // A client that refuses the certificate leaves no request.
                            if let Ok(stream) = acceptor.accept(sock).await {
                                answer(stream, log, script).await;
                            }
                        }
                    }
                });
            }
        });
        WebhookServer {
            addr,
            scheme,
            received,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("{}://{}/hooks/alerts", self.scheme, self.addr)
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

type Script = Arc<Mutex<std::vec::IntoIter<u16>>>;

/// `tests/fixtures`.
pub fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// Reads one request, records it when the scripted status is 2xx, answers and closes.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    log: Arc<Mutex<Vec<Received>>>,
    script: Script,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, body) = loop {
        let n = match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
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
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
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
}
