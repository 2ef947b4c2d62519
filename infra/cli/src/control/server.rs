//! The owner's side of the control API.

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::frame::{Frame, VERSION, read_frame, write_frame};
use crate::cli::Cli;
use crate::commands;
use crate::data::Data;
use crate::io::Io;

/// The listening control socket; removed when stopped.
pub struct ControlServer {
    path: PathBuf,
    accept: JoinHandle<()>,
}

impl ControlServer {
    /// Binds `<data>/control.sock` (replacing one left by a killed owner), owner-only, and
    /// serves commands on `data`.
    ///
    /// # Errors
    /// When the socket cannot be created.
    pub fn start(data: Arc<Data>) -> Result<ControlServer> {
        let path = super::socket_path(&data.config.data_dir);
        if path.as_os_str().len() >= 108 {
            bail!(
                "the control socket path {} is longer than Unix sockets allow (107 bytes): use a \
                 shorter --data-dir",
                path.display()
            );
        }
        // This process holds the directory's locks: a socket file here is a dead owner's.
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot create the control socket {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} owner-only", path.display()))?;
        let owner = std::fs::metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .uid();
        let accept = tokio::spawn(accept_loop(listener, owner, data));
        Ok(ControlServer { path, accept })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting and removes the socket (commands running finish on their own).
    pub fn stop(self) {
        self.accept.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept_loop(listener: UnixListener, owner: u32, data: Arc<Data>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let data = data.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, owner, data).await {
                tracing::debug!(error = %format!("{e:#}"), "control connection ended");
            }
        });
    }
}

/// Why a peer may not use the socket, if it may not.
pub fn refusal(peer_uid: Option<u32>, owner: u32) -> Option<String> {
    match peer_uid {
        Some(uid) if uid == owner => None,
        Some(uid) => Some(format!(
            "user {uid} may not use this control socket: it belongs to user {owner}; run the \
             command as that user"
        )),
        None => Some("the peer's credentials cannot be read".into()),
    }
}

async fn serve(mut stream: UnixStream, owner: u32, data: Arc<Data>) -> Result<()> {
    let peer = stream.peer_cred().ok().map(|c| c.uid());
    if let Some(reason) = refusal(peer, owner) {
        tracing::warn!(peer = ?peer, "control client refused");
        write_frame(&mut stream, &Frame::Refused(reason)).await?;
        return Ok(());
    }
    let request = match read_frame(&mut stream).await? {
        Some(Frame::Request(r)) => r,
        Some(_) => bail!("the first frame is not a request"),
        None => return Ok(()),
    };
    if request.version != VERSION {
        let reason = format!(
            "this shardline speaks control protocol {VERSION}, the client {}: use the same \
             shardline binary for both",
            request.version
        );
        write_frame(&mut stream, &Frame::Refused(reason)).await?;
        return Ok(());
    }
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Frame>(64);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if write_frame(&mut write, &frame).await.is_err() {
                break;
            }
        }
    });
    let command = match Cli::try_parse_from(&request.argv) {
        Ok(cli) => Some(cli.command),
        Err(e) => {
            let _ = tx
                .send(Frame::Stderr(e.render().to_string().into_bytes()))
                .await;
            let _ = tx.send(Frame::Exit(2)).await;
            None
        }
    };
    if let Some(command) = command {
        if !commands::uses_data_dir(&command) {
            let _ = tx
                .send(Frame::Refused(
                    "this command does not run through the control socket".into(),
                ))
                .await;
        } else {
            let (cancel_tx, cancel_rx) = watch::channel(false);
            let (stdin_read, mut stdin_write) = tokio::io::duplex(64 << 10);
            let reader = tokio::spawn(async move {
                let mut stdin_open = true;
                loop {
                    match read_frame(&mut read).await {
                        Ok(Some(Frame::Stdin(bytes))) if stdin_open => {
                            if stdin_write.write_all(&bytes).await.is_err() {
                                stdin_open = false;
                            }
                        }
                        Ok(Some(Frame::StdinEnd)) => {
                            let _ = stdin_write.shutdown().await;
                            stdin_open = false;
                        }
                        Ok(Some(_)) => {}
                        // The client went away (Ctrl-C, killed): the command is cancelled.
                        Ok(None) | Err(_) => {
                            let _ = stdin_write.shutdown().await;
                            let _ = cancel_tx.send(true);
                            return;
                        }
                    }
                }
            });
            let mut io = Io::remote(
                tx.clone(),
                Box::new(tokio::io::BufReader::new(stdin_read)),
                request.terminal,
                request.stderr_terminal,
                request.cwd.clone(),
                cancel_rx,
            );
            let code = commands::execute(&data, &mut io, command).await;
            let _ = io.flush().await;
            drop(io);
            let _ = tx.send(Frame::Exit(code)).await;
            reader.abort();
        }
    }
    drop(tx);
    let _ = writer.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_may_use_the_socket() {
        assert_eq!(refusal(Some(1000), 1000), None);
        let r = refusal(Some(65534), 1000).expect("another user is refused");
        assert!(r.contains("user 65534") && r.contains("user 1000"), "{r}");
        assert!(refusal(None, 1000).is_some(), "unknown peers are refused");
    }
}
