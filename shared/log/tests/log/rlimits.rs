//! Appends under a file-size or descriptor limit (setrlimit in a child process) fail cleanly,
//! or go on where they can, and resume once the child raises the limit again; the parent then
//! reopens the log and finds exactly the acknowledged records.
//!
//! The children are this test binary re-run with an environment variable naming their
//! directory (see `ChildTest`); they print `ACK <offset> <data>` for each acknowledged record,
//! `REFUSED <message>` for each refused one, and `NOTE ...` lines for the parent to check.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use shardline_core::ports::Stream;
use shardline_core::stream::{PutRecordResult, ShardId, StartingPosition};
use shardline_log::{Log, LogOptions, verify};

use crate::common::*;

const FSIZE_CHILD: &str = "SHARDLINE_FSIZE_CHILD";
const NOFILE_CHILD: &str = "SHARDLINE_NOFILE_CHILD";
const WAIT: Duration = Duration::from_secs(60);

/// Sets the soft limit of `resource` (the hard limit stays, so it can be raised again).
#[allow(unsafe_code)]
fn set_soft_limit(resource: libc::__rlimit_resource_t, soft: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by reference.
    unsafe {
        assert_eq!(libc::getrlimit(resource, &mut lim), 0, "getrlimit");
        lim.rlim_cur = soft.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(resource, &lim), 0, "setrlimit");
    }
}

/// Ignores SIGXFSZ, so a write past RLIMIT_FSIZE fails with EFBIG instead of killing us.
#[allow(unsafe_code)]
fn ignore_sigxfsz() {
    // SAFETY: installs the SIG_IGN disposition; no handler code runs.
    let previous = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    assert_ne!(previous, libc::SIG_ERR, "signal(SIGXFSZ)");
}

/// Puts `n` records of ~200 bytes; prints ACK/REFUSED lines; returns (acked, refused).
async fn put_and_print(log: &Log, tag: &str, n: usize) -> (usize, usize) {
    let entries = (0..n)
        .map(|i| entry("k", format!("{tag}-{i}-{}", "v".repeat(200))))
        .collect::<Vec<_>>();
    let datas: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.data).into_owned())
        .collect();
    let (mut acked, mut refused) = (0, 0);
    let results = log.put_records("s", entries).await.expect("put call");
    for (r, d) in results.iter().zip(&datas) {
        match r {
            PutRecordResult::Ok {
                sequence_number, ..
            } => {
                acked += 1;
                println!("ACK {} {d}", sequence_number.parts().expect("parts").offset);
            }
            PutRecordResult::Err { error_message, .. } => {
                refused += 1;
                println!("REFUSED {error_message}");
            }
        }
    }
    (acked, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_size_child() {
    let Some(dir) = std::env::var_os(FSIZE_CHILD) else {
        return;
    };
    // The harness printed "test <name> ... " without a newline: start a line of our own.
    println!();
    ignore_sigxfsz();
    let log = Log::open(&dir, LogOptions::default()).await.expect("open");
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    for i in 0..5 {
        put_and_print(&log, &format!("before{i}"), 20).await;
    }
    let size = log.shard_stats("s").await.expect("stats")[0].bytes;
    // Room for about four more puts in the segment file, then EFBIG (mid-batch, mid-frame).
    set_soft_limit(libc::RLIMIT_FSIZE, size + 18_000);
    let mut refused_puts = 0;
    for i in 0..100 {
        let (_, refused) = put_and_print(&log, &format!("limited{i}"), 20).await;
        refused_puts += usize::from(refused > 0);
        if refused_puts == 3 {
            break;
        }
    }
    set_soft_limit(libc::RLIMIT_FSIZE, libc::RLIM_INFINITY);
    println!("NOTE raised");
    for i in 0..5 {
        put_and_print(&log, &format!("after{i}"), 20).await;
    }
    log.close().await.expect("close");
    println!("NOTE done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_child() {
    let Some(dir) = std::env::var_os(NOFILE_CHILD) else {
        return;
    };
    println!();
    let clock = shardline_core::time::ManualClock::new(T0);
    let options = LogOptions {
        open_sealed_segments: 1,
        ..small_segments(&clock)
    };
    let log = Log::open(&dir, options).await.expect("open");
    log.create_stream("s", 1, Duration::from_secs(3600))
        .await
        .expect("create");
    for i in 0..10 {
        put_and_print(&log, &format!("before{i}"), 3).await;
    }
    let count = log.shard_stats("s").await.expect("stats")[0].segments;
    // The lowest free descriptor number becomes the limit: nothing more can be opened.
    let lowest = {
        use std::os::fd::AsRawFd;
        let probe = std::fs::File::open("/dev/null").expect("probe");
        probe.as_raw_fd()
    };
    set_soft_limit(libc::RLIMIT_NOFILE, lowest as libc::rlim_t);
    for i in 0..10 {
        put_and_print(&log, &format!("limited{i}"), 3).await;
    }
    let during = log.shard_stats("s").await.expect("stats")[0].segments;
    println!("NOTE segments {count} {during}");
    let it = log
        .get_shard_iterator("s", ShardId(0), &StartingPosition::TrimHorizon)
        .await
        .expect("iterator");
    match log.get_records(&it, 10).await {
        Ok(r) => println!("NOTE read {}", r.records.len()),
        Err(e) => println!("NOTE read error {e}"),
    }
    set_soft_limit(libc::RLIMIT_NOFILE, libc::RLIM_INFINITY);
    println!("NOTE raised");
    for i in 0..10 {
        put_and_print(&log, &format!("after{i}"), 3).await;
    }
    let after = log.shard_stats("s").await.expect("stats")[0].segments;
    println!("NOTE segments after {after}");
    let all = read_all(&log, "s", ShardId(0), StartingPosition::TrimHorizon).await;
    println!("NOTE read all {}", all.len());
    log.close().await.expect("close");
    println!("NOTE done");
}

/// The acknowledged records the child printed, by offset; and its other lines.
fn parse(lines: &[String]) -> (BTreeMap<u64, String>, Vec<String>, Vec<String>) {
    let (mut acked, mut refused, mut notes) = (BTreeMap::new(), Vec::new(), Vec::new());
    for l in lines {
        if let Some(rest) = l.strip_prefix("ACK ") {
            let (off, data) = rest.split_once(' ').expect("ACK line");
            let dup = acked.insert(off.parse().expect("offset"), data.to_string());
            assert!(dup.is_none(), "offset acknowledged twice: {l}");
        } else if let Some(msg) = l.strip_prefix("REFUSED ") {
            refused.push(msg.to_string());
        } else if let Some(note) = l.strip_prefix("NOTE ") {
            notes.push(note.to_string());
        }
    }
    (acked, refused, notes)
}

/// Reopens the log in `dir` and checks it holds exactly `acked`.
async fn check_present(dir: &Path, acked: &BTreeMap<u64, String>) {
    assert!(verify(dir, None).expect("verify").is_ok());
    let log = Log::open(dir, LogOptions::default()).await.expect("reopen");
    let present: BTreeMap<u64, String> =
        read_all(&log, "s", ShardId(0), StartingPosition::TrimHorizon)
            .await
            .into_iter()
            .map(|r| {
                (
                    r.sequence_number.parts().expect("parts").offset,
                    String::from_utf8(r.data.to_vec()).expect("utf8"),
                )
            })
            .collect();
    assert_eq!(present.len(), acked.len(), "present vs acknowledged");
    assert!(
        present == *acked,
        "the records present are exactly those acknowledged"
    );
    log.close().await.expect("close");
}

#[tokio::test]
async fn appends_past_a_file_size_limit_fail_cleanly_and_resume_when_it_is_raised() {
    if std::env::var_os(FSIZE_CHILD).is_some() || std::env::var_os(NOFILE_CHILD).is_some() {
        return;
    }
    let dir = tempdir();
    let child = ChildTest::spawn(
        "rlimits::file_size_child",
        &[(FSIZE_CHILD, dir.path().as_os_str())],
    );
    let (ok, lines) = child.finish(WAIT);
    let (acked, refused, notes) = parse(&lines);
    assert!(
        ok && notes.last().map(String::as_str) == Some("done"),
        "{notes:?}"
    );
    assert!(refused.len() >= 3 * 20, "{} refused", refused.len());
    for msg in &refused {
        assert!(
            msg.contains("file size limit") && msg.contains("ulimit -f") && msg.contains(".seg"),
            "{msg}"
        );
    }
    let after = lines
        .iter()
        .skip_while(|l| *l != "NOTE raised")
        .filter(|l| l.starts_with("ACK "))
        .count();
    assert_eq!(
        after,
        5 * 20,
        "every put after the limit was raised is acknowledged"
    );
    assert!(
        acked.len() >= 5 * 20 + 5 * 20,
        "{} acknowledged",
        acked.len()
    );
    check_present(dir.path(), &acked).await;
}

#[tokio::test]
async fn out_of_descriptors_rolls_wait_appends_go_on_and_everything_resumes() {
    if std::env::var_os(FSIZE_CHILD).is_some() || std::env::var_os(NOFILE_CHILD).is_some() {
        return;
    }
    let dir = tempdir();
    let child = ChildTest::spawn(
        "rlimits::descriptor_child",
        &[(NOFILE_CHILD, OsStr::new(dir.path()))],
    );
    let (ok, lines) = child.finish(WAIT);
    let (acked, refused, notes) = parse(&lines);
    assert!(
        ok && notes.last().map(String::as_str) == Some("done"),
        "{notes:?}"
    );
    assert!(
        refused.is_empty(),
        "appends need no new descriptor: {refused:?}"
    );
    assert_eq!(acked.len(), 3 * 30);
    let segments = |prefix: &str| -> Vec<usize> {
        notes
            .iter()
            .find_map(|n| n.strip_prefix(prefix))
            .expect(prefix)
            .split(' ')
            .map(|x| x.parse().expect("number"))
            .collect()
    };
    let (before, during) = (segments("segments ")[0], segments("segments ")[1]);
    assert_eq!(before, during, "no roll while no descriptor can be opened");
    assert!(
        segments("segments after ")[0] > during,
        "rolls resume once the limit is raised"
    );
    let read = notes
        .iter()
        .find(|n| n.starts_with("read "))
        .expect("read note");
    assert!(
        read.contains("Too many open files") && read.contains(".seg"),
        "a read needing a sealed segment's handle fails clearly: {read}"
    );
    assert_eq!(segments("read all ")[0], 90);
    check_present(dir.path(), &acked).await;
}
