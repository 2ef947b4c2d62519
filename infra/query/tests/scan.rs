//! What a time-bounded summary reads stays bounded as days of Parquet accumulate: the listing
//! stays in the days the window reaches, objects of those days outside the window are skipped
//! by their statistics, and the bytes read do not grow with the history.

mod support;

use std::path::Path;

use shardline_core::MetricType;
use shardline_query::{QueryEngine, ScanStats};
use support::{Row, write_file};

/// 2026-02-19T00:00:00Z.
const DAY19: i64 = 1_771_459_200;
const DAY: i64 = 86_400;

/// One object per hour of `day` (days after 2026-02-19, may be negative) up to `hours`:
/// 10 instances, CPU and memory, a sample every 10 minutes. Returns the objects' bytes.
fn write_day(root: &Path, day: i64, hours: i64) -> u64 {
    let start = DAY19 + day * DAY;
    let date = chrono::DateTime::from_timestamp(start, 0).expect("date");
    let ymd = (
        chrono::Datelike::year(&date),
        chrono::Datelike::month(&date),
        chrono::Datelike::day(&date),
    );
    let mut bytes = 0;
    for hour in 0..hours {
        let mut rows = Vec::new();
        for minute in (0..60).step_by(10) {
            let t = start + hour * 3600 + minute * 60;
            for i in 0..10 {
                for metric_type in ["cpu_utilization", "memory_usage"] {
                    rows.push(Row {
                        metric_type,
                        timestamp: t,
                        value: (i * 7 + hour + minute) as f64,
                        instance_id: format!("i-{i:017}"),
                    });
                }
            }
        }
        let name = format!("hour-{hour:02}");
        write_file(root, ymd, &name, &rows);
        let dir = root.join(format!(
            "year={}/month={:02}/day={:02}",
            ymd.0, ymd.1, ymd.2
        ));
        bytes += std::fs::metadata(dir.join(format!("{name}.parquet")))
            .expect("written")
            .len();
    }
    bytes
}

async fn last_hour(engine: &QueryEngine, now_ms: i64) -> (Vec<(String, u64, f64)>, ScanStats) {
    let (rows, scan) = engine
        .metric_summary_scanned(MetricType::CpuUtilization, Some(now_ms - 3_600_000), None)
        .await
        .expect("summary");
    let rows = rows
        .into_iter()
        .map(|r| (r.instance_id, r.samples, r.avg))
        .collect();
    (rows, scan)
}

#[tokio::test]
async fn a_windowed_summary_reads_the_same_as_history_accumulates() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Yesterday whole, and today up to noon.
    write_day(dir.path(), -1, 24);
    let today = write_day(dir.path(), 0, 12);
    let now_ms = (DAY19 + 12 * 3600) * 1000;
    let engine = QueryEngine::new(dir.path()).expect("engine");

    let (rows, scan) = last_hour(&engine, now_ms).await;
    assert_eq!(rows.len(), 10, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.1 == 6),
        "six samples in the hour: {rows:?}"
    );
    assert_eq!(
        scan.files_listed, 12,
        "only today's objects are listed: {scan:?}"
    );
    assert_eq!(
        scan.files_pruned, 11,
        "today's objects before 11:00 are skipped by their statistics: {scan:?}"
    );
    assert!(
        scan.bytes_scanned > 0 && scan.bytes_scanned < today / 2,
        "{scan:?}, today's objects hold {today} bytes"
    );

    // Thirty more days of history, and the same window reads the same.
    let mut history = 0;
    for day in -31..-1 {
        history += write_day(dir.path(), day, 24);
    }
    let (again, scan_again) = last_hour(&engine, now_ms).await;
    assert_eq!(again, rows);
    assert_eq!(
        scan_again, scan,
        "history of {history} bytes changed the scan"
    );

    // Without a window every object is listed (what the bound avoids).
    let (_, everything) = engine
        .metric_summary_scanned(MetricType::CpuUtilization, None, None)
        .await
        .expect("everything");
    assert_eq!(everything.files_listed, 12 + 24 * 31, "{everything:?}");
}
