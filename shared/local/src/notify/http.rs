//! A minimal HTTP/1.1 client: one `POST` per connection (`Connection: close`), over TCP or
//! TLS.
//!
//! - URLs: `http://host[:port][/path]` and `https://host[:port][/path]`; no credentials.
//! - TLS: rustls with the aws-lc-rs provider (the stack the AWS SDK's default HTTPS client
//!   uses, so the build carries one TLS stack). The server's certificate is checked against
//!   the operating system's roots (`rustls-native-certs`: `/etc/ssl/certs` and friends,
//!   `SSL_CERT_FILE`/`SSL_CERT_DIR` honoured), plus the PEM certificates of `ca_file` when
//!   given. No roots at all is an error at construction.
//! - Timeouts: `connect_timeout` bounds name resolution, the TCP connect and the TLS
//!   handshake; `timeout` bounds the whole exchange.
//! - Headers: the request head is built only from the URL (validated at parse: no spaces or
//!   control characters) and [`header_value`]-escaped values, so no value can end a header
//!   line or start another.
//! - Responses are read up to [`MAX_RESPONSE`] bytes; only the status code and the start of
//!   the body are used. A TLS peer closing without `close_notify` after its answer is fine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use shardline_core::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most response bytes read.
pub const MAX_RESPONSE: u64 = 64 * 1024;

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://`.
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port (80 or 443 when absent).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http[s]://host[:port][/path]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the URL and what is wrong with it.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            Err(Error::InvalidArgument(format!(
                "webhook URL {url:?}: {why}"
            )))
        };
        let scheme = |s: &str| {
            url.get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
                .then(|| &url[s.len()..])
        };
        let (tls, rest) = match (scheme("https://"), scheme("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => return bad("expected an http:// or https:// URL"),
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
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
        {
            return bad(
                "the host may hold only letters, digits, '-', '.', '_' (and ':' in [IPv6])",
            );
        }
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return bad("the port must be a number from 1 to 65535"),
            },
            None if tls => 443,
            None => 80,
        };
        if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return bad("the path contains spaces or control characters");
        }
        Ok(HttpUrl {
            tls,
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
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The URL as it is shown in messages.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.host_header(), self.path)
    }
}

/// A header value made safe for the request head: every byte outside visible ASCII (`!` to
/// `~`), and `%` itself, is written as `%XX` (as in a URL), so CR, LF and any other byte of a
/// record field can neither end the header line nor start another. Values of visible ASCII
/// without `%` are sent as they are; a receiver restores the rest with any URL decoder.
pub fn header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An HTTP response: status code and the start of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The body (possibly cut at [`MAX_RESPONSE`]), lossily decoded.
    pub body: String,
}

/// How a [`HttpClient`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Bound on the whole exchange.
    pub timeout: Duration,
    /// Bound on resolving, connecting and the TLS handshake.
    pub connect_timeout: Duration,
    /// PEM certificates trusted besides the operating system's roots (`https://` only).
    pub ca_file: Option<PathBuf>,
}

/// POSTs JSON to one URL.
#[derive(Clone)]
pub struct HttpClient {
    url: HttpUrl,
    options: ClientOptions,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("url", &self.url)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client for `url`; for `https://`, loads the trusted roots now.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for zero timeouts, an unreadable or empty `ca_file`, or no
    /// trusted roots at all.
    pub fn new(url: HttpUrl, options: ClientOptions) -> Result<Self> {
        let endpoint = url.endpoint();
        for (name, d) in [
            ("timeout", options.timeout),
            ("connect_timeout", options.connect_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::InvalidArgument(format!(
                    "webhook {endpoint}: {name} must be positive, e.g. \"5s\""
                )));
            }
        }
        let tls = if url.tls {
            Some(connector(&endpoint, options.ca_file.as_deref())?)
        } else {
            if options.ca_file.is_some() {
                return Err(Error::InvalidArgument(format!(
                    "webhook {endpoint}: ca_file applies to https:// URLs only"
                )));
            }
            None
        };
        Ok(HttpClient { url, options, tls })
    }

    /// The URL.
    pub fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// POSTs `body` as `application/json` with extra `headers` (values escaped with
    /// [`header_value`]).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the server cannot be reached, a timeout passes, the TLS
    /// handshake fails, or the answer is not HTTP.
    pub async fn post_json(&self, headers: &[(&str, &str)], body: &[u8]) -> Result<Response> {
        let endpoint = self.url.endpoint();
        let timeout = self.options.timeout;
        match tokio::time::timeout(timeout, self.exchange(headers, body)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(Error::Unavailable(format!("webhook {endpoint}: {e}"))),
            Err(_) => Err(Error::Unavailable(format!(
                "webhook {endpoint} did not answer within {}",
                humantime::format_duration(timeout)
            ))),
        }
    }

    async fn exchange(&self, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Response> {
        let connect_timeout = self.options.connect_timeout;
        let slow = || {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "could not connect within {}",
                    humantime::format_duration(connect_timeout)
                ),
            )
        };
        let addr = (self.url.host.as_str(), self.url.port);
        let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| slow())??;
        let head = request_head(&self.url, headers, body.len());
        match &self.tls {
            None => send(tcp, &head, body).await,
            Some(connector) => {
                let name = ServerName::try_from(self.url.host.clone()).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
                })?;
                let stream = tokio::time::timeout(connect_timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| slow())?
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!(
                                "TLS handshake failed: {e} (the server's certificate must chain \
                                 to a root of the operating system or of ca_file)"
                            ),
                        )
                    })?;
                send(stream, &head, body).await
            }
        }
    }
}

/// The trusted roots (the OS store and `ca_file`) as a TLS connector.
fn connector(endpoint: &str, ca_file: Option<&Path>) -> Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let bad = |why: String| {
            Error::InvalidArgument(format!(
                "webhook {endpoint}: ca_file {}: {why}",
                path.display()
            ))
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<std::result::Result<_, _>>())
            .map_err(|e| bad(format!("not readable as PEM certificates ({e})")))?;
        if certs.is_empty() {
            return Err(bad("holds no PEM certificate".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("a certificate is not usable as a root ({e})")))?;
        }
    } else if added == 0 {
        return Err(Error::InvalidArgument(format!(
            "webhook {endpoint}: no trusted root certificates found in the operating system's \
             store; install the ca-certificates package, point SSL_CERT_FILE at a PEM bundle, or \
             set ca_file"
        )));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

fn request_head(url: &HttpUrl, headers: &[(&str, &str)], body_len: usize) -> String {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shardline/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {body_len}\r\nConnection: close\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
    );
    for (name, value) in headers {
        // Names are the caller's constants; keep them to token characters all the same.
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        head.push_str(&format!("{name}: {}\r\n", header_value(value)));
    }
    head.push_str("\r\n");
    head
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &str,
    body: &[u8],
) -> std::io::Result<Response> {
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    match (&mut stream).take(MAX_RESPONSE).read_to_end(&mut raw).await {
        Ok(_) => {}
        // A TLS peer that closes without close_notify after answering (common) is done.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
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
        assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 8080, false));
        assert_eq!(u.path, "/hooks/alerts?x=1");
        let u = HttpUrl::parse("http://example.test").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = HttpUrl::parse("http://[::1]:9/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        let u = HttpUrl::parse("HTTPS://hooks.example.com/x").unwrap();
        assert_eq!((u.tls, u.port), (true, 443));
        assert_eq!(u.endpoint(), "https://hooks.example.com/x");
    }

    #[test]
    fn rejects_garbage_with_reasons() {
        for bad in [
            "ftp://x",
            "http://",
            "http://h:0/",
            "http://h:99999/",
            "http://u@h/",
            "http://h\r\nX-Evil: 1/",
            "http://h/a b",
            "http://h/a\nb",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn header_values_cannot_break_the_head() {
        assert_eq!(header_value("alarm-i-1-1700000000"), "alarm-i-1-1700000000");
        let evil = "i-1\r\nX-Injected: yes\r\n\r\nBODY";
        let escaped = header_value(evil);
        assert_eq!(escaped, "i-1%0D%0AX-Injected:%20yes%0D%0A%0D%0ABODY");
        assert_eq!(header_value("50%\u{e9}"), "50%25%C3%A9");
        let url = HttpUrl::parse("http://127.0.0.1:9/h").unwrap();
        let head = request_head(&url, &[("X-Id", evil), ("X-Bad\r\nName", "v")], 3);
        let lines: Vec<&str> = head.split("\r\n").collect();
        assert!(!lines.iter().any(|l| l.starts_with("X-Injected")), "{head}");
        assert!(lines.contains(&"X-BadName: v"), "{head}");
        assert_eq!(lines.iter().filter(|l| l.is_empty()).count(), 2, "{head}");
    }

    #[test]
    fn parses_responses() {
        let r = parse_response(b"HTTP/1.1 503 Service Unavailable\r\nA: b\r\n\r\nbusy").unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "busy"));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n").is_none());
    }
}
