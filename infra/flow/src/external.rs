//! Task handlers outside the process: a local command or an HTTP endpoint.
//!
//! - [`CommandHandler`] runs a program per invocation with the task input as JSON on
//!   standard input and reads the result as JSON from standard output (empty output is
//!   `null`). A non-zero exit fails the task: when the last line of standard error is a JSON
//!   object with `Error`/`Cause` (or Lambda's `errorType`/`errorMessage`) those are the error
//!   and cause, otherwise the error is `States.TaskFailed` and the cause the exit status and
//!   the end of standard error.
//! - [`HttpHandler`] POSTs the input as JSON to an `http://` URL (HTTP/1.1, one request per
//!   connection) and reads a JSON reply; a status outside 2xx fails the task, with the
//!   error and cause read from a JSON body as above.
//!
//! Both are bounded by a timeout (then `States.Timeout`) and read at most
//! [`MAX_OUTPUT`] bytes of output.

use crate::registry::{TaskContext, TaskError, TaskHandler};
use async_trait::async_trait;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The most output bytes read from a command or an HTTP reply (Step Functions' payload limit).
pub const MAX_OUTPUT: u64 = 256 * 1024;

/// Reads `{"Error", "Cause"}` or `{"errorType", "errorMessage"}` from text, if it is such JSON.
fn error_from(text: &str) -> Option<TaskError> {
    let v: Value = serde_json::from_str(text.trim()).ok()?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    match (s("Error"), s("errorType")) {
        (Some(e), _) => Some(TaskError::new(e, s("Cause").unwrap_or_default())),
        (None, Some(e)) => Some(TaskError::new(e, s("errorMessage").unwrap_or_default())),
        _ => None,
    }
}

fn parse_output(what: &str, bytes: &[u8]) -> Result<Value, TaskError> {
    let text = String::from_utf8_lossy(bytes);
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text.trim()).map_err(|e| {
        TaskError::new(
            "States.TaskFailed",
            format!(
                "{what} did not answer JSON ({e}): {}",
                text.chars().take(200).collect::<String>()
            ),
        )
    })
}

/// Runs a local command per invocation.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// How long one invocation may take.
    pub timeout: Duration,
}

#[async_trait]
impl TaskHandler for CommandHandler {
    async fn invoke(&self, input: Value, _ctx: &TaskContext) -> Result<Value, TaskError> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err(TaskError::new(
                "States.Runtime",
                "the task command is empty",
            ));
        };
        let shown = self.argv.join(" ");
        let failed = |m: String| TaskError::new("States.TaskFailed", m);
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("cannot start {shown:?}: {e}")))?;
        let body = serde_json::to_vec(&input).unwrap_or_default();
        let (mut stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let run = async {
            let write = async {
                if let Some(mut w) = stdin.take() {
                    // A command that does not read its input may close the pipe early.
                    let _ = w.write_all(&body).await;
                }
            };
            let read = |r: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| async move {
                let mut buf = Vec::new();
                if let Some(r) = r {
                    r.take(MAX_OUTPUT).read_to_end(&mut buf).await.ok();
                }
                buf
            };
            let (_, out, err) = tokio::join!(
                write,
                read(stdout.map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>)),
                read(stderr.map(|e| Box::new(e) as Box<dyn tokio::io::AsyncRead + Unpin + Send>)),
            );
            let status = child.wait().await;
            (status, out, err)
        };
        let (status, out, err) = tokio::time::timeout(self.timeout, run).await.map_err(|_| {
            TaskError::new(
                "States.Timeout",
                format!(
                    "{shown:?} did not finish within {} s",
                    self.timeout.as_secs_f64()
                ),
            )
        })?;
        let status = status.map_err(|e| failed(format!("{shown:?}: {e}")))?;
        if status.success() {
            return parse_output(&format!("{shown:?}"), &out);
        }
        let err_text = String::from_utf8_lossy(&err);
        let last = err_text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(error_from(last).unwrap_or_else(|| {
            let tail: String = err_text
                .chars()
                .rev()
                .take(500)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            failed(format!("{shown:?} exited with {status}: {}", tail.trim()))
        }))
    }
}

/// POSTs each invocation to an HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpHandler {
    host: String,
    port: u16,
    path: String,
    url: String,
    /// How long one invocation may take.
    pub timeout: Duration,
}

impl HttpHandler {
    /// A handler for `http://host[:port][/path]`.
    ///
    /// # Errors
    /// A message naming the URL when it is not a plain `http://` URL.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        let bad = |why: &str| format!("task URL {url:?}: {why}");
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are supported (no TLS client here)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() || path.contains([' ', '\r', '\n']) {
            return Err(bad("the host is missing or the path has spaces"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
            path,
            url: url.to_string(),
            timeout,
        })
    }

    async fn exchange(&self, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.path,
            self.host,
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut raw = Vec::new();
        s.take(MAX_OUTPUT + 8192).read_to_end(&mut raw).await?;
        let text_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP header end")
            })?;
        let head = String::from_utf8_lossy(&raw[..text_end]);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "no status code")
            })?;
        let mut body = raw[text_end + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Ok((status, body))
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < i + 2 + size {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[(i + 4 + size).min(b.len())..];
    }
    out
}

#[async_trait]
impl TaskHandler for HttpHandler {
    async fn invoke(&self, input: Value, _ctx: &TaskContext) -> Result<Value, TaskError> {
        let body = serde_json::to_vec(&input).unwrap_or_default();
        let (status, reply) = tokio::time::timeout(self.timeout, self.exchange(&body))
            .await
            .map_err(|_| {
                TaskError::new(
                    "States.Timeout",
                    format!(
                        "{} did not answer within {} s",
                        self.url,
                        self.timeout.as_secs_f64()
                    ),
                )
            })?
            .map_err(|e| TaskError::new("States.TaskFailed", format!("{}: {e}", self.url)))?;
        if (200..300).contains(&status) {
            return parse_output(&self.url, &reply);
        }
        let text = String::from_utf8_lossy(&reply);
        Err(error_from(&text).unwrap_or_else(|| {
            TaskError::new(
                "States.TaskFailed",
                format!(
                    "{} answered HTTP {status}: {}",
                    self.url,
                    text.chars().take(300).collect::<String>()
                ),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::VirtualClock;
    use std::sync::Arc;

    fn ctx() -> TaskContext {
        TaskContext {
            state_name: "S".into(),
            resource: "arn:x".into(),
            execution_name: "e".into(),
            retry_count: 0,
            clock: Arc::new(VirtualClock::new(0)),
        }
    }

    #[tokio::test]
    async fn commands_answer_json_and_fail_with_their_error() {
        let echo = CommandHandler {
            argv: vec!["cat".into()],
            timeout: Duration::from_secs(10),
        };
        let out = echo.invoke(serde_json::json!({"a": [1]}), &ctx()).await;
        assert_eq!(out, Ok(serde_json::json!({"a": [1]})));
        let failing = CommandHandler {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo '{\"errorType\": \"Custom\", \"errorMessage\": \"no\"}' >&2; exit 3".into(),
            ],
            timeout: Duration::from_secs(10),
        };
        assert_eq!(
            failing.invoke(Value::Null, &ctx()).await,
            Err(TaskError::new("Custom", "no"))
        );
        let missing = CommandHandler {
            argv: vec!["/nonexistent/program".into()],
            timeout: Duration::from_secs(10),
        };
        assert!(
            missing
                .invoke(Value::Null, &ctx())
                .await
                .is_err_and(|e| e.error == "States.TaskFailed")
        );
        assert!(HttpHandler::new("https://x", Duration::from_secs(1)).is_err());
    }

    #[tokio::test]
    async fn http_endpoints_answer_json() -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = tokio::spawn(async move {
            for reply in [
                "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
                "HTTP/1.1 500 Oops\r\nContent-Length: 33\r\n\r\n{\"Error\":\"Down\",\"Cause\":\"broken\"}",
            ] {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        let h = HttpHandler::new(
            &format!("http://127.0.0.1:{port}/task"),
            Duration::from_secs(10),
        )
        .map_err(std::io::Error::other)?;
        assert_eq!(
            h.invoke(Value::Null, &ctx()).await,
            Ok(serde_json::json!({"ok": true}))
        );
        assert_eq!(
            h.invoke(Value::Null, &ctx()).await,
            Err(TaskError::new("Down", "broken"))
        );
        server.await.map_err(std::io::Error::other)?;
        Ok(())
    }
}
