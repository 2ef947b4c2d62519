//! Fault injection on the log's I/O paths, for the crate's own tests.
//!
//! Every write, `fdatasync`, truncation, file creation and directory sync the log makes on a
//! segment, an index or stream metadata goes through one of the functions here, named by a
//! [`Point`]. In any build but the crate's unit tests (`cfg(test)`) each function is the plain
//! I/O call, marked `#[inline(always)]`: no registry, no branch, nothing on the hot path.
//!
//! In unit tests, [`arm`] makes the next `times` calls at a point fail, for files under one
//! directory only (so tests running in parallel never see each other's faults): with an
//! `io::Error` of a chosen OS error code, after writing part of the buffer (a short write,
//! as a full disk gives), or by blocking until the test releases it (to hold a writer inside
//! its `fdatasync` while requests queue). The returned [`Armed`] disarms the fault on drop.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A place in the I/O paths where a fault can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// Writing a batch of frames to the active segment.
    SegmentWrite,
    /// `fdatasync` of a segment (per batch, at a roll, after a repair).
    SegmentSync,
    /// Cutting a segment back to its committed length after a failed write.
    SegmentTruncate,
    /// Creating the next segment file at a roll.
    SegmentCreate,
    /// Writing a segment's index (temporary file, then rename).
    IndexWrite,
    /// Writing stream metadata (temporary file, then rename).
    MetaWrite,
    /// `fsync` of a directory after files were created or renamed in it.
    DirSync,
}

/// Writes all of `buf` at `pos` of `file` (positional: the file offset is not used).
#[cfg(not(test))]
#[inline(always)]
pub(crate) fn write_all_at(
    _point: Point,
    _path: &Path,
    file: &File,
    buf: &[u8],
    pos: u64,
) -> io::Result<()> {
    file.write_all_at(buf, pos)
}

/// `fdatasync` of `file`.
#[cfg(not(test))]
#[inline(always)]
pub(crate) fn sync_data(_point: Point, _path: &Path, file: &File) -> io::Result<()> {
    file.sync_data()
}

/// Sets the length of `file`.
#[cfg(not(test))]
#[inline(always)]
pub(crate) fn set_len(_point: Point, _path: &Path, file: &File, len: u64) -> io::Result<()> {
    file.set_len(len)
}

/// A check before an operation that has no file handle yet (create, rename, directory sync).
#[cfg(not(test))]
#[inline(always)]
pub(crate) fn hit(_point: Point, _path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
pub(crate) use armed::{Action, Gate, arm, hit, set_len, sync_data, write_all_at};

#[cfg(test)]
mod armed {
    use super::*;
    use std::path::PathBuf;
    use std::sync::{Arc, Condvar, Mutex};

    /// What an armed point does.
    #[derive(Debug, Clone)]
    pub(crate) enum Action {
        /// Fail with this OS error code (e.g. `libc`'s ENOSPC = 28, EMFILE = 24, EIO = 5).
        Fail(i32),
        /// Write this many bytes of the buffer, then fail with the OS error code.
        ShortWrite(usize, i32),
        /// Block until the gate opens, then do the operation.
        Wait(Gate),
    }

    /// A gate an armed point waits at; [`Gate::open`] lets it through. Every wait is bounded
    /// (ten seconds), so a test that forgets to open it fails instead of hanging.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct Gate(Arc<(Mutex<(bool, usize)>, Condvar)>);

    impl Gate {
        /// Lets every waiter through, now and later.
        pub(crate) fn open(&self) {
            let (m, c) = &*self.0;
            m.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
            c.notify_all();
        }

        /// How many calls have reached the gate so far.
        pub(crate) fn reached(&self) -> usize {
            self.0.0.lock().unwrap_or_else(|p| p.into_inner()).1
        }

        fn wait(&self) -> io::Result<()> {
            let (m, c) = &*self.0;
            let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
            g.1 += 1;
            let (g, timeout) = c
                .wait_timeout_while(g, std::time::Duration::from_secs(10), |g| !g.0)
                .unwrap_or_else(|p| p.into_inner());
            drop(g);
            if timeout.timed_out() {
                return Err(io::Error::other("fault gate never opened"));
            }
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Entry {
        id: u64,
        point: Point,
        under: PathBuf,
        remaining: u32,
        action: Action,
    }

    static ARMED: Mutex<(u64, Vec<Entry>)> = Mutex::new((0, Vec::new()));

    /// Disarms its fault when dropped.
    #[derive(Debug)]
    #[must_use = "the fault is disarmed when this is dropped"]
    pub(crate) struct Armed(u64);

    impl Drop for Armed {
        fn drop(&mut self) {
            let mut g = ARMED.lock().unwrap_or_else(|p| p.into_inner());
            g.1.retain(|e| e.id != self.0);
        }
    }

    /// Makes the next `times` calls at `point` on paths under `under` do `action`.
    pub(crate) fn arm(point: Point, under: &Path, times: u32, action: Action) -> Armed {
        let mut g = ARMED.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        let id = g.0;
        g.1.push(Entry {
            id,
            point,
            under: under.to_path_buf(),
            remaining: times,
            action,
        });
        Armed(id)
    }

    fn take(point: Point, path: &Path) -> Option<Action> {
        let mut g = ARMED.lock().unwrap_or_else(|p| p.into_inner());
        let e =
            g.1.iter_mut()
                .find(|e| e.point == point && e.remaining > 0 && path.starts_with(&e.under))?;
        e.remaining -= 1;
        Some(e.action.clone())
    }

    fn apply(action: Option<Action>) -> io::Result<()> {
        match action {
            None => Ok(()),
            Some(Action::Fail(code) | Action::ShortWrite(_, code)) => {
                Err(io::Error::from_raw_os_error(code))
            }
            Some(Action::Wait(gate)) => gate.wait(),
        }
    }

    pub(crate) fn write_all_at(
        point: Point,
        path: &Path,
        file: &File,
        buf: &[u8],
        pos: u64,
    ) -> io::Result<()> {
        match take(point, path) {
            Some(Action::ShortWrite(n, code)) => {
                file.write_all_at(&buf[..n.min(buf.len())], pos)?;
                Err(io::Error::from_raw_os_error(code))
            }
            other => {
                apply(other)?;
                file.write_all_at(buf, pos)
            }
        }
    }

    pub(crate) fn sync_data(point: Point, path: &Path, file: &File) -> io::Result<()> {
        apply(take(point, path))?;
        file.sync_data()
    }

    pub(crate) fn set_len(point: Point, path: &Path, file: &File, len: u64) -> io::Result<()> {
        apply(take(point, path))?;
        file.set_len(len)
    }

    pub(crate) fn hit(point: Point, path: &Path) -> io::Result<()> {
        apply(take(point, path))
    }
}
