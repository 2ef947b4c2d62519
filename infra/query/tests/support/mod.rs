//! Writes real Parquet files in the S3 sink's Hive layout for query tests.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// One metric row.
#[derive(Debug, Clone)]
pub struct Row {
    pub metric_type: &'static str,
    pub timestamp: i64,
    pub value: f64,
    pub instance_id: String,
}

/// A record batch in `metric_schema()` for `rows`.
pub fn batch(rows: &[Row]) -> RecordBatch {
    let s = |f: &dyn Fn(&Row) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let prefix = |t: &str| match t {
        "cpu_utilization" => "cpu",
        "memory_usage" => "mem",
        "disk_usage" => "disk",
        _ => "net",
    };
    let ms: Vec<i64> = rows.iter().map(|r| r.timestamp * 1000).collect();
    let columns: Vec<ArrayRef> = vec![
        s(&|r| format!("{}-{}", prefix(r.metric_type), r.timestamp)),
        s(&|r| r.metric_type.to_string()),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            rows.iter().map(|r| r.value).collect::<Vec<_>>(),
        )),
        s(&|r| r.instance_id.clone()),
        s(&|_| "eu-west-1".to_string()),
        s(&|r| format!("{}", r.timestamp)),
        Arc::new(TimestampMillisecondArray::from(ms.clone()).with_timezone("UTC")),
        s(&|r| {
            if r.metric_type == "network_traffic" {
                "Megabits/Second"
            } else {
                "Percent"
            }
            .to_string()
        }),
        s(&|_| "shardId-000000000000".to_string()),
        s(&|r| r.timestamp.to_string()),
        Arc::new(TimestampMillisecondArray::from(ms).with_timezone("UTC")),
    ];
    RecordBatch::try_new(shardline_core::schema::metric_schema(), columns).expect("batch")
}

/// Writes `rows` to `<root>/year=Y/month=MM/day=DD/<name>.parquet` (ZSTD, dictionary).
pub fn write_file(root: &Path, (y, m, d): (i32, u32, u32), name: &str, rows: &[Row]) {
    let dir = root.join(format!("year={y}/month={m:02}/day={d:02}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = std::fs::File::create(dir.join(format!("{name}.parquet"))).expect("create");
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(true)
        .build();
    let mut w = ArrowWriter::try_new(file, shardline_core::schema::metric_schema(), Some(props))
        .expect("writer");
    w.write(&batch(rows)).expect("write");
    w.close().expect("close");
}
