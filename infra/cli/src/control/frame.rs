//! The control protocol's frames.
//!
//! Wire format: a frame is a 4-byte big-endian length `n` (1 to [`MAX_FRAME`]), then `n` bytes:
//! one kind byte and the payload.
//!
//! | kind | frame | payload | direction |
//! |---|---|---|---|
//! | 1 | [`Frame::Request`] | JSON [`Request`] | client → server, first frame |
//! | 2 | [`Frame::Stdin`] | bytes of standard input | client → server |
//! | 3 | [`Frame::StdinEnd`] | none | client → server |
//! | 4 | [`Frame::Stdout`] | bytes of standard output | server → client |
//! | 5 | [`Frame::Stderr`] | bytes of standard error | server → client |
//! | 6 | [`Frame::Progress`] | JSON [`ProgressUpdate`] | server → client |
//! | 7 | [`Frame::Exit`] | 4-byte big-endian exit code | server → client, last frame |
//! | 8 | [`Frame::Refused`] | UTF-8 reason | server → client, instead of running |

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::progress::ProgressUpdate;

/// The protocol version a client sends; a server refuses other versions.
pub const VERSION: u32 = 1;

/// The largest frame accepted (kind byte and payload).
pub const MAX_FRAME: usize = 16 << 20;

/// What a client asks the server to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// [`VERSION`].
    pub version: u32,
    /// The command line, as the user typed it (the program name first).
    pub argv: Vec<String>,
    /// The user's working directory.
    pub cwd: PathBuf,
    /// Whether the user's standard output is a terminal.
    pub terminal: bool,
    /// Whether the user's standard error is a terminal (progress bars).
    pub stderr_terminal: bool,
}

/// One frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The command to run.
    Request(Request),
    /// Standard input.
    Stdin(Vec<u8>),
    /// End of standard input.
    StdinEnd,
    /// Standard output.
    Stdout(Vec<u8>),
    /// Standard error.
    Stderr(Vec<u8>),
    /// Progress.
    Progress(ProgressUpdate),
    /// The command's exit code.
    Exit(i32),
    /// The server would not run the command.
    Refused(String),
}

/// A frame that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or closed in the middle of a frame.
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a frame of this protocol.
    #[error("control connection: bad frame: {0}")]
    Bad(String),
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Request(_) => 1,
            Frame::Stdin(_) => 2,
            Frame::StdinEnd => 3,
            Frame::Stdout(_) => 4,
            Frame::Stderr(_) => 5,
            Frame::Progress(_) => 6,
            Frame::Exit(_) => 7,
            Frame::Refused(_) => 8,
        }
    }

    /// The frame's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let payload: Vec<u8> = match self {
            Frame::Request(r) => serde_json::to_vec(r).unwrap_or_default(),
            Frame::Stdin(b) | Frame::Stdout(b) | Frame::Stderr(b) => b.clone(),
            Frame::StdinEnd => Vec::new(),
            Frame::Progress(p) => serde_json::to_vec(p).unwrap_or_default(),
            Frame::Exit(code) => code.to_be_bytes().to_vec(),
            Frame::Refused(reason) => reason.as_bytes().to_vec(),
        };
        let len = u32::try_from(payload.len() + 1).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(payload.len() + 5);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(self.kind());
        out.extend_from_slice(&payload);
        out
    }

    fn decode(kind: u8, payload: Vec<u8>) -> Result<Frame, FrameError> {
        let json = |what: &str| FrameError::Bad(format!("{what} is not valid JSON"));
        Ok(match kind {
            1 => Frame::Request(serde_json::from_slice(&payload).map_err(|_| json("request"))?),
            2 => Frame::Stdin(payload),
            3 => Frame::StdinEnd,
            4 => Frame::Stdout(payload),
            5 => Frame::Stderr(payload),
            6 => Frame::Progress(serde_json::from_slice(&payload).map_err(|_| json("progress"))?),
            7 => {
                let bytes: [u8; 4] = payload
                    .as_slice()
                    .try_into()
                    .map_err(|_| FrameError::Bad("exit code is not 4 bytes".into()))?;
                Frame::Exit(i32::from_be_bytes(bytes))
            }
            8 => Frame::Refused(String::from_utf8_lossy(&payload).into_owned()),
            k => return Err(FrameError::Bad(format!("unknown frame kind {k}"))),
        })
    }
}

/// Writes one frame.
///
/// # Errors
/// When the connection fails, or the frame is larger than [`MAX_FRAME`].
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> std::io::Result<()> {
    let bytes = frame.encode();
    if bytes.len() - 4 > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds {MAX_FRAME}", bytes.len() - 4),
        ));
    }
    w.write_all(&bytes).await?;
    w.flush().await
}

/// Reads one frame; `None` at a clean end of the connection (before a frame starts).
///
/// # Errors
/// [`FrameError`] when the connection ends inside a frame or the bytes are not a frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(FrameError::Bad(format!("frame length {len}")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    let payload = body.split_off(1);
    Frame::decode(body[0], payload).map(Some)
}

/// Output larger than this is sent in several frames.
pub const CHUNK: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_frame_round_trips_and_bad_bytes_are_named() {
        let frames = vec![
            Frame::Request(Request {
                version: VERSION,
                argv: vec!["shardline".into(), "table".into(), "count".into()],
                cwd: "/tmp".into(),
                terminal: true,
                stderr_terminal: false,
            }),
            Frame::Stdin(b"line\n".to_vec()),
            Frame::StdinEnd,
            Frame::Stdout(b"42\n".to_vec()),
            Frame::Stderr(Vec::new()),
            Frame::Progress(ProgressUpdate {
                label: "replay".into(),
                total: Some(10),
                position: 3,
                done: false,
            }),
            Frame::Exit(-3),
            Frame::Refused("no".into()),
        ];
        let mut wire = Vec::new();
        for f in &frames {
            write_frame(&mut wire, f).await.expect("write");
        }
        let mut r = wire.as_slice();
        for f in &frames {
            assert_eq!(read_frame(&mut r).await.expect("read").as_ref(), Some(f));
        }
        assert!(read_frame(&mut r).await.expect("clean end").is_none());

        let torn = &Frame::Stdout(b"abc".to_vec()).encode()[..6];
        let err = read_frame(&mut &torn[..]).await.expect_err("torn frame");
        assert!(matches!(err, FrameError::Io(_)), "{err}");
        let unknown = [0, 0, 0, 1, 99];
        let err = read_frame(&mut &unknown[..])
            .await
            .expect_err("unknown kind");
        assert!(err.to_string().contains("unknown frame kind 99"), "{err}");
        let huge = [0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut &huge[..]).await.is_err());
    }
}
