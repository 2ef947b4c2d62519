//! A minimal HTTP/1.1 client: one `POST` per connection (`Connection: close`), plain TCP.
//!
//! Only `http://host[:port][/path]` URLs are accepted; TLS is not implemented, so `https://`
//! is refused with an error saying so. Responses are read up to [`MAX_RESPONSE`] bytes; only
//! the status code and the start of the body are used.

use std::time::Duration;

use shardline_core::{Error, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most response bytes read.
pub const MAX_RESPONSE: u64 = 64 * 1024;

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port (80 when absent).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the URL and what is wrong with it.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            Err(Error::InvalidArgument(format!(
                "webhook URL {url:?}: {why}"
            )))
        };
        if url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        {
            return bad(
                "https:// is not supported yet (no TLS in the built-in client); \
                 use an http:// endpoint, e.g. a local relay",
            );
        }
        let Some(rest) = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])
        else {
            return bad("expected an http:// URL");
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return bad("credentials in the URL are not supported");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some(end) = v6.find(']') else {
                return bad("unclosed '[' in the host");
            };
            (&v6[..end], v6[end + 1..].strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return bad("the host is missing");
        }
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return bad("the port must be a number from 1 to 65535"),
            },
            None => 80,
        };
        if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return bad("the path contains spaces or control characters");
        }
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            path,
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// An HTTP response: status code and the start of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The body (possibly cut at [`MAX_RESPONSE`]), lossily decoded.
    pub body: String,
}

/// POSTs `body` as `application/json` with extra `headers`, all within `timeout`.
///
/// # Errors
/// [`Error::Unavailable`] when the server cannot be reached, times out, or answers with
/// something that is not HTTP.
pub async fn post_json(
    url: &HttpUrl,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response> {
    let endpoint = format!("http://{}{}", url.host_header(), url.path);
    match tokio::time::timeout(timeout, exchange(url, headers, body)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(Error::Unavailable(format!("webhook {endpoint}: {e}"))),
        Err(_) => Err(Error::Unavailable(format!(
            "webhook {endpoint} did not answer within {}",
            humantime::format_duration(timeout)
        ))),
    }
}

async fn exchange(
    url: &HttpUrl,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect((url.host.as_str(), url.port)).await?;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shardline/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .await?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not an HTTP response: {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(80)])
            ),
        )
    })
}

/// Parses the status line and splits off the body.
fn parse_response(raw: &[u8]) -> Option<Response> {
    let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
    let status_line = std::str::from_utf8(&raw[..line_end]).ok()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let body = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&[][..], |i| &raw[i + 4..]);
    Some(Response {
        status,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/hooks/alerts?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 8080));
        assert_eq!(u.path, "/hooks/alerts?x=1");
        let u = HttpUrl::parse("http://example.test").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = HttpUrl::parse("http://[::1]:9/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
    }

    #[test]
    fn rejects_https_and_garbage_with_reasons() {
        let e = HttpUrl::parse("https://hooks.example.com/x").unwrap_err();
        assert!(e.to_string().contains("https:// is not supported"), "{e}");
        for bad in [
            "ftp://x",
            "http://",
            "http://h:0/",
            "http://h:99999/",
            "http://u@h/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_responses() {
        let r = parse_response(b"HTTP/1.1 503 Service Unavailable\r\nA: b\r\n\r\nbusy").unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "busy"));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n").is_none());
    }
}
