//! Progress of long commands (`replay`, `backfill`): an indicatif bar on the user's terminal
//! with records, rate and ETA.
//!
//! Run by the control server, a command's progress travels as [`ProgressUpdate`] frames
//! (at most ten a second) and the client draws the same bar on its own terminal with
//! [`ProgressView`]. Output that is not a terminal gets no bar at all.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::control::frame::Frame;

/// A progress state sent to a control client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressUpdate {
    /// What is counted, e.g. `replay s3-parquet`.
    pub label: String,
    /// The expected count, when known.
    pub total: Option<u64>,
    /// The count so far.
    pub position: u64,
    /// The bar is finished (and cleared).
    pub done: bool,
}

/// A progress bar: drawn here, sent to a client, or not shown.
pub struct Progress {
    kind: Kind,
}

enum Kind {
    Hidden,
    Local(ProgressBar),
    Remote {
        tx: mpsc::Sender<Frame>,
        label: String,
        total: Mutex<Option<u64>>,
        position: AtomicU64,
        last_sent: Mutex<Option<Instant>>,
    },
}

const SEND_EVERY: Duration = Duration::from_millis(100);

fn bar(label: &str, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() {
        "{msg} [{bar:30}] {human_pos}/{human_len} records, {per_sec}, ETA {eta}"
    } else {
        "{msg} {spinner} {human_pos} records, {per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

impl Progress {
    /// No bar.
    pub fn hidden() -> Progress {
        Progress { kind: Kind::Hidden }
    }

    /// A bar on this process's standard error.
    pub fn local(label: &str, total: Option<u64>) -> Progress {
        Progress {
            kind: Kind::Local(bar(label, total)),
        }
    }

    /// A bar drawn by a control client.
    pub fn remote(tx: mpsc::Sender<Frame>, label: &str, total: Option<u64>) -> Progress {
        let p = Progress {
            kind: Kind::Remote {
                tx,
                label: label.to_string(),
                total: Mutex::new(total),
                position: AtomicU64::new(0),
                last_sent: Mutex::new(None),
            },
        };
        p.send(false, true);
        p
    }

    /// Sets the expected count.
    pub fn set_total(&self, total: u64) {
        match &self.kind {
            Kind::Hidden => {}
            Kind::Local(b) => b.set_length(total),
            Kind::Remote { total: t, .. } => {
                *t.lock().unwrap_or_else(|e| e.into_inner()) = Some(total);
                self.send(false, true);
            }
        }
    }

    /// Sets the count so far.
    pub fn set_position(&self, position: u64) {
        match &self.kind {
            Kind::Hidden => {}
            Kind::Local(b) => b.set_position(position),
            Kind::Remote { position: p, .. } => {
                p.store(position, Ordering::Relaxed);
                self.send(false, false);
            }
        }
    }

    /// Adds to the count.
    pub fn inc(&self, n: u64) {
        match &self.kind {
            Kind::Hidden => {}
            Kind::Local(b) => b.inc(n),
            Kind::Remote { position, .. } => {
                position.fetch_add(n, Ordering::Relaxed);
                self.send(false, false);
            }
        }
    }

    /// Clears the bar (the command prints its summary next).
    pub fn finish(&self) {
        match &self.kind {
            Kind::Hidden => {}
            Kind::Local(b) => b.finish_and_clear(),
            Kind::Remote { .. } => self.send(true, true),
        }
    }

    fn send(&self, done: bool, force: bool) {
        let Kind::Remote {
            tx,
            label,
            total,
            position,
            last_sent,
        } = &self.kind
        else {
            return;
        };
        let mut last = last_sent.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if !force && last.is_some_and(|t| now.duration_since(t) < SEND_EVERY) {
            return;
        }
        *last = Some(now);
        let update = ProgressUpdate {
            label: label.clone(),
            total: *total.lock().unwrap_or_else(|e| e.into_inner()),
            position: position.load(Ordering::Relaxed),
            done,
        };
        // Progress is advisory: a full channel drops an update, never blocks the command.
        let _ = tx.try_send(Frame::Progress(update));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Kind::Local(b) = &self.kind {
            b.finish_and_clear();
        }
    }
}

/// Draws a remote command's progress on this process's standard error.
#[derive(Default)]
pub struct ProgressView {
    bar: Option<(ProgressBar, Option<u64>)>,
}

impl ProgressView {
    /// Applies one update.
    pub fn update(&mut self, u: &ProgressUpdate) {
        if u.done {
            if let Some((b, _)) = self.bar.take() {
                b.finish_and_clear();
            }
            return;
        }
        let needs_new = self
            .bar
            .as_ref()
            .is_none_or(|(_, t)| t.is_none() && u.total.is_some());
        if needs_new {
            if let Some((b, _)) = self.bar.take() {
                b.finish_and_clear();
            }
            self.bar = Some((bar(&u.label, u.total), u.total));
        }
        if let Some((b, total)) = &mut self.bar {
            if let Some(t) = u.total
                && *total != Some(t)
            {
                b.set_length(t);
                *total = Some(t);
            }
            b.set_position(u.position);
        }
    }

    /// Clears any bar left.
    pub fn clear(&mut self) {
        if let Some((b, _)) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
