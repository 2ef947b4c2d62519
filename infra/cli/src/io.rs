//! Where a command's output goes and its input comes from: this process's terminal, or the
//! client of the control API on whose behalf the owner of the data directory runs it.
//!
//! Every command that reads or changes the data directory is one function taking an [`Io`]
//! (see [`crate::commands::execute`]): run locally it writes to this process's standard output
//! and error; run by the control server it writes frames back to the client, which prints them
//! on its own standard output and error. The client sees the same bytes and the same exit code
//! either way.
//!
//! Invariants:
//! - Local output is written through at once (as `println!` does); remote output is buffered and
//!   sent by [`Out::flush`], which every command calls after each batch of output and the
//!   runner calls at the end, so remote output never grows without bound in a long command.
//! - [`Io::cancelled`] resolves when the user stops the command (Ctrl-C locally, the client
//!   going away remotely); commands that wait (`stream get --follow`) stop on it.

use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::io::AsyncBufRead;
use tokio::sync::{mpsc, watch};

use crate::control::frame::{CHUNK, Frame};
use crate::progress::Progress;

/// A command's standard input.
pub type Input = Box<dyn AsyncBufRead + Send + Unpin>;

/// One output stream (standard output or standard error).
pub struct Out {
    buf: Vec<u8>,
    target: Target,
}

enum Target {
    Stdout,
    Stderr,
    Remote { tx: mpsc::Sender<Frame>, err: bool },
}

impl Out {
    /// Writes to this process's standard output.
    pub fn stdout() -> Out {
        Out {
            buf: Vec::new(),
            target: Target::Stdout,
        }
    }

    /// Writes to this process's standard error.
    pub fn stderr() -> Out {
        Out {
            buf: Vec::new(),
            target: Target::Stderr,
        }
    }

    /// Sends to a control client as stdout (or stderr when `err`) frames.
    pub fn remote(tx: mpsc::Sender<Frame>, err: bool) -> Out {
        Out {
            buf: Vec::new(),
            target: Target::Remote { tx, err },
        }
    }

    /// Sends what was written since the last flush (remote), or flushes the stream (local).
    ///
    /// # Errors
    /// When the client has gone away, or the local stream cannot be written.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        match &self.target {
            Target::Stdout => std::io::stdout().flush(),
            Target::Stderr => std::io::stderr().flush(),
            Target::Remote { tx, err } => {
                if self.buf.is_empty() {
                    return Ok(());
                }
                let bytes = std::mem::take(&mut self.buf);
                for chunk in bytes.chunks(CHUNK) {
                    let frame = if *err {
                        Frame::Stderr(chunk.to_vec())
                    } else {
                        Frame::Stdout(chunk.to_vec())
                    };
                    tx.send(frame)
                        .await
                        .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
                }
                Ok(())
            }
        }
    }
}

impl Write for Out {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match &self.target {
            Target::Stdout => std::io::stdout().lock().write(data),
            Target::Stderr => std::io::stderr().lock().write(data),
            Target::Remote { .. } => {
                self.buf.extend_from_slice(data);
                Ok(data.len())
            }
        }
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match &self.target {
            Target::Stdout => std::io::stdout().lock().write_all(data),
            Target::Stderr => std::io::stderr().lock().write_all(data),
            Target::Remote { .. } => {
                self.buf.extend_from_slice(data);
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &self.target {
            Target::Stdout => std::io::stdout().flush(),
            Target::Stderr => std::io::stderr().flush(),
            // Sent by the async flush; nothing is lost, only later.
            Target::Remote { .. } => Ok(()),
        }
    }
}

/// A command's input, output, terminal facts and cancellation.
pub struct Io {
    /// Standard output.
    pub out: Out,
    /// Standard error.
    pub err: Out,
    /// Standard input.
    pub input: Input,
    /// Whether the user's standard output is a terminal (aligned tables instead of JSON Lines).
    pub terminal: bool,
    /// The user's working directory: relative paths in arguments are resolved against it.
    pub cwd: PathBuf,
    progress_tx: Option<mpsc::Sender<Frame>>,
    stderr_terminal: bool,
    /// The client's going away; `None` locally, where Ctrl-C is listened for only by commands
    /// that wait for it (others keep the default: Ctrl-C ends the process).
    cancel: Option<watch::Receiver<bool>>,
}

impl Io {
    /// This process's standard streams; cancelled by Ctrl-C.
    pub fn local() -> Io {
        use std::io::IsTerminal;
        Io {
            out: Out::stdout(),
            err: Out::stderr(),
            input: Box::new(tokio::io::BufReader::new(tokio::io::stdin())),
            terminal: std::io::stdout().is_terminal(),
            cwd: std::env::current_dir().unwrap_or_default(),
            progress_tx: None,
            stderr_terminal: std::io::stderr().is_terminal(),
            cancel: None,
        }
    }

    /// Streams for a control client: output as frames on `tx`.
    pub fn remote(
        tx: mpsc::Sender<Frame>,
        input: Input,
        terminal: bool,
        stderr_terminal: bool,
        cwd: PathBuf,
        cancel: watch::Receiver<bool>,
    ) -> Io {
        Io {
            out: Out::remote(tx.clone(), false),
            err: Out::remote(tx.clone(), true),
            input,
            terminal,
            cwd,
            progress_tx: Some(tx),
            stderr_terminal,
            cancel: Some(cancel),
        }
    }

    /// `path` resolved against the user's working directory.
    pub fn path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.cwd.join(path)
        }
    }

    /// A progress bar on the user's terminal (drawn only when standard error is one).
    pub fn progress(&self, label: &str, total: Option<u64>) -> Progress {
        match &self.progress_tx {
            Some(tx) if self.stderr_terminal => Progress::remote(tx.clone(), label, total),
            Some(_) => Progress::hidden(),
            None if self.stderr_terminal => Progress::local(label, total),
            None => Progress::hidden(),
        }
    }

    /// Resolves when the user stops the command (never, if the signal source goes away). The
    /// future does not borrow `self`.
    pub fn cancelled(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let rx = self.cancel.clone();
        async move {
            let Some(mut rx) = rx else {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
                return;
            };
            loop {
                if *rx.borrow_and_update() {
                    return;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Sends whatever output is buffered.
    ///
    /// # Errors
    /// When the client has gone away.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().await?;
        self.err.flush().await
    }
}
