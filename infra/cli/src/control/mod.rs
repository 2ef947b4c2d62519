//! The control API: how every command reaches a data directory that a running `shardline up`
//! (or `shardline dashboard`) owns.
//!
//! The owner listens on a Unix socket, `<data>/control.sock`, created with mode 0600 (only its
//! owner may connect) and, beyond that, accepts only clients whose peer credentials carry the
//! socket owner's user id. A command that reads or changes the data directory first tries to
//! connect: when the owner answers, the command line is sent to it and it runs the very same
//! command function ([`crate::commands::execute`]) on its open stores, streaming standard
//! output, standard error and progress back; the client prints them and exits with the same
//! code. When nothing answers, the command opens the directory itself.
//!
//! # Layout
//! - [`frame`]: the wire format.
//! - [`server`]: [`server::ControlServer`], the owner's side.
//! - [`client`]: connecting and running a command remotely.
//!
//! Invariants:
//! - The socket exists only while its owner holds the directory's locks: it is bound after they
//!   are taken (a socket left by a killed owner is replaced) and removed at shutdown.
//! - The server runs exactly the commands a client could run locally, parsed by the same clap
//!   definition; relative paths are resolved against the client's working directory.

pub mod client;
pub mod frame;
pub mod server;

use std::path::{Path, PathBuf};

/// The control socket of a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}
