//! A served log on 127.0.0.1:0 in a temporary directory, a raw HTTP/1.1 client (so tests can
//! send what no SDK would), and an aws-sdk-kinesis client pointed at the endpoint.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use shardline_kinesis_api::{AccessKey, Endpoint, Running, ServeConfig, server};
use shardline_log::{Log, LogOptions};

/// A log served over HTTP, removed on drop.
pub struct Served {
    pub log: Arc<Log>,
    pub running: Option<Running>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Served {
    pub async fn start() -> Served {
        Served::with(ServeConfig::default(), LogOptions::default()).await
    }

    pub async fn with(mut config: ServeConfig, options: LogOptions) -> Served {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let log = Arc::new(Log::open(dir.path(), options).await.expect("open log"));
        config.listen = "127.0.0.1:0".parse().expect("addr");
        let endpoint = Arc::new(Endpoint::new(log.clone(), config).expect("endpoint"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = server::serve_on(listener, endpoint).expect("serve");
        let addr = running.local_addr();
        Served {
            log,
            running: Some(running),
            addr,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    /// An aws-sdk-kinesis client for this endpoint with static test credentials.
    pub fn sdk(&self) -> aws_sdk_kinesis::Client {
        sdk_client(&self.url(), "AKIDTEST", "secret-test")
    }

    /// Sends raw bytes and reads one HTTP/1.1 answer (blocking; run in spawn_blocking).
    pub async fn raw(&self, request: Vec<u8>) -> Answer {
        let addr = self.addr;
        tokio::task::spawn_blocking(move || raw_exchange(addr, &request))
            .await
            .expect("raw task")
    }

    /// POSTs `body` with the given headers (Host and Content-Length added).
    pub async fn post(&self, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        self.request("POST", headers, body).await
    }

    pub async fn request(&self, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut req = format!(
            "{method} / HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(bytes).await
    }

    /// A JSON 1.1 call of `action` with `body`.
    pub async fn json(&self, action: &str, body: &str) -> Answer {
        self.post(
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", &format!("Kinesis_20131202.{action}")),
            ],
            body.as_bytes(),
        )
        .await
    }
}

pub fn sdk_client(url: &str, id: &str, secret: &str) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            id, secret, None, None, "test",
        ))
        .endpoint_url(url)
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

pub fn keys() -> Vec<AccessKey> {
    vec![AccessKey {
        id: "AKIDTEST".into(),
        secret: "secret-test".into(),
    }]
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(request).expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let (head_end, content_length) = loop {
        let n = s.read(&mut chunk).expect("read");
        assert!(
            n > 0,
            "connection closed before an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..p]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            break (p + 4, len);
        }
    };
    while buf.len() < head_end + content_length {
        let n = s.read(&mut chunk).expect("read body");
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: buf[head_end..head_end + content_length].to_vec(),
    }
}
