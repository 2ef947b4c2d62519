//! The client's side of the control API: finding the owner of a data directory and running a
//! command through it.

use anyhow::{Context, Result, bail};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

use super::frame::{Frame, Request, VERSION, read_frame, write_frame};
use crate::progress::ProgressView;

/// Connects to the owner of `data_dir`, if one is running.
///
/// # Errors
/// When a socket exists but this user may not use it.
pub async fn connect(data_dir: &Path) -> Result<Option<UnixStream>> {
    let path = super::socket_path(data_dir);
    if !path.exists() {
        return Ok(None);
    }
    match UnixStream::connect(&path).await {
        Ok(s) => Ok(Some(s)),
        // A socket left by an owner that was killed: nobody listens.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            Ok(None)
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
            "{} is owned by a running shardline whose control socket {} refuses this user \
             (it is owner-only): run the command as the user that started it",
            data_dir.display(),
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot connect to {}", path.display())),
    }
}

/// Waits up to `patience` for the owner of `data_dir` to open its control socket (it takes its
/// locks first, so a command can find the directory locked a moment before the socket exists).
///
/// # Errors
/// As [`connect`].
pub async fn wait_for_owner(data_dir: &Path, patience: Duration) -> Result<Option<UnixStream>> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(s) = connect(data_dir).await? {
            return Ok(Some(s));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs this process's command line on the owner behind `stream`: prints what it prints,
/// draws its progress, forwards standard input when `stdin` is set, and returns its exit code.
///
/// # Errors
/// When the owner refuses the command or the connection breaks before the exit code.
pub async fn run(stream: UnixStream, stdin: bool) -> Result<i32> {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| {
            a.into_string().map_err(|a| {
                anyhow::anyhow!(
                    "argument {a:?} is not UTF-8, which the control socket cannot carry: stop \
                     the running shardline or pass UTF-8 arguments"
                )
            })
        })
        .collect::<Result<_>>()?;
    let request = Request {
        version: VERSION,
        argv,
        cwd: std::env::current_dir().unwrap_or_default(),
        terminal: std::io::stdout().is_terminal(),
        stderr_terminal: std::io::stderr().is_terminal(),
    };
    let (mut read, mut write) = stream.into_split();
    // A refusal may already be on its way: a failed write is read about below.
    let _ = write_frame(&mut write, &Frame::Request(request)).await;
    let forward = tokio::spawn(async move {
        if stdin {
            let mut input = tokio::io::stdin();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match input.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if write_frame(&mut write, &Frame::Stdin(buf[..n].to_vec()))
                            .await
                            .is_err()
                        {
                            return write;
                        }
                    }
                }
            }
        }
        let _ = write_frame(&mut write, &Frame::StdinEnd).await;
        write
    });
    let mut view = ProgressView::default();
    let result = loop {
        match read_frame(&mut read).await {
            Ok(Some(Frame::Stdout(b))) => {
                view.clear();
                let mut out = std::io::stdout().lock();
                if out.write_all(&b).and_then(|()| out.flush()).is_err() {
                    // The reader of our output went away (e.g. `| head`): stop quietly.
                    break Ok(0);
                }
            }
            Ok(Some(Frame::Stderr(b))) => {
                view.clear();
                let _ = std::io::stderr().lock().write_all(&b);
            }
            Ok(Some(Frame::Progress(p))) => view.update(&p),
            Ok(Some(Frame::Exit(code))) => break Ok(code),
            Ok(Some(Frame::Refused(reason))) => {
                break Err(anyhow::anyhow!("the running shardline refused: {reason}"));
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                break Err(anyhow::anyhow!(
                    "the running shardline closed the connection before the command finished \
                     (it stopped?); run the command again"
                ));
            }
            Err(e) => break Err(anyhow::Error::new(e)),
        }
    };
    view.clear();
    forward.abort();
    result
}
