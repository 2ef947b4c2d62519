//! Column-parallel Parquet encoding of one record batch.
//!
//! Invariants: the bytes equal what [`parquet::arrow::ArrowWriter`] writes for the same batch
//! and properties (same row groups of at most `max_row_group_row_count` rows, same pages,
//! same footer and embedded Arrow schema); only the work is spread. Each row group's column
//! chunks are encoded on up to `threads` scoped threads, columns assigned by estimated cost
//! (largest first, to the least-loaded thread), then appended to the file in schema order.
//! With one thread, or properties that bound row groups by bytes (a limit the row-count split
//! here would not honour), the batch goes through `ArrowWriter` itself.

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, compute_leaves,
};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use super::internal;
use shardline_core::Error;

/// Encodes `batch` as one Parquet file on up to `threads` threads.
///
/// # Errors
/// [`Error::Internal`] if the Parquet writer fails or an encoding thread panics.
pub(super) fn encode(
    batch: &RecordBatch,
    props: WriterProperties,
    threads: usize,
) -> Result<Vec<u8>, Error> {
    let capacity = batch.get_array_memory_size() / 4 + (1 << 16);
    let rows_per_group = props.max_row_group_row_count().unwrap_or(usize::MAX).max(1);
    let by_bytes = props.max_row_group_bytes().is_some();
    let mut writer =
        ArrowWriter::try_new(Vec::with_capacity(capacity), batch.schema(), Some(props))
            .map_err(|e| internal("writer", e))?;
    if threads <= 1 || by_bytes {
        writer.write(batch).map_err(|e| internal("write", e))?;
        return writer.into_inner().map_err(|e| internal("close", e));
    }
    let (mut file, factory) = writer
        .into_serialized_writer()
        .map_err(|e| internal("writer", e))?;
    let schema = batch.schema();
    let mut start = 0;
    let mut group = 0;
    while start < batch.num_rows() {
        let len = rows_per_group.min(batch.num_rows() - start);
        let slice = batch.slice(start, len);
        let writers = factory
            .create_column_writers(group)
            .map_err(|e| internal("column writers", e))?;
        let mut jobs = Vec::with_capacity(writers.len());
        let mut leaves = Vec::with_capacity(writers.len());
        for (field, column) in schema.fields().iter().zip(slice.columns()) {
            let cost = column.get_buffer_memory_size();
            for leaf in compute_leaves(field, column).map_err(|e| internal("leaves", e))? {
                leaves.push((leaf, cost));
            }
        }
        if leaves.len() != writers.len() {
            return Err(internal(
                "columns",
                format!(
                    "{} leaves for {} column writers",
                    leaves.len(),
                    writers.len()
                ),
            ));
        }
        for (writer, (leaf, cost)) in writers.into_iter().zip(leaves) {
            jobs.push(Job { writer, leaf, cost });
        }
        let chunks = encode_columns(jobs, threads)?;
        let mut row_group = file
            .next_row_group()
            .map_err(|e| internal("row group", e))?;
        for chunk in chunks {
            chunk
                .append_to_row_group(&mut row_group)
                .map_err(|e| internal("column chunk", e))?;
        }
        row_group.close().map_err(|e| internal("row group", e))?;
        start += len;
        group += 1;
    }
    file.into_inner().map_err(|e| internal("close", e))
}

/// One column chunk to encode.
struct Job {
    writer: ArrowColumnWriter,
    leaf: ArrowLeafColumn,
    cost: usize,
}

impl Job {
    fn run(mut self) -> Result<ArrowColumnChunk, ParquetError> {
        self.writer.write(&self.leaf)?;
        self.writer.close()
    }
}

/// Encodes the jobs on up to `threads` scoped threads; the chunks come back in job order.
fn encode_columns(jobs: Vec<Job>, threads: usize) -> Result<Vec<ArrowColumnChunk>, Error> {
    let threads = threads.min(jobs.len()).max(1);
    // Longest-processing-time-first assignment.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].cost));
    let mut load = vec![0usize; threads];
    let mut assigned = vec![0usize; jobs.len()];
    for &i in &order {
        let t = (0..threads).min_by_key(|&t| load[t]).unwrap_or(0);
        load[t] += jobs[i].cost;
        assigned[i] = t;
    }
    let mut lanes: Vec<Vec<(usize, Job)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, job) in jobs.into_iter().enumerate() {
        lanes[assigned[i]].push((i, job));
    }
    let mut results: Vec<Option<ArrowColumnChunk>> = Vec::new();
    results.resize_with(assigned.len(), || None);
    let done = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(threads);
        // The first lane runs on the calling thread.
        let mut lanes = lanes.into_iter();
        let own = lanes.next().unwrap_or_default();
        for lane in lanes {
            handles.push(s.spawn(move || run_lane(lane)));
        }
        let mut done = vec![run_lane(own)];
        for h in handles {
            done.push(
                h.join()
                    .unwrap_or_else(|_| Err(internal("column encoding thread", "panicked"))),
            );
        }
        done
    });
    for lane in done {
        for (i, chunk) in lane? {
            results[i] = Some(chunk);
        }
    }
    results
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.ok_or_else(|| internal("column encoding", format!("column {i} missing"))))
        .collect()
}

type LaneResult = Result<Vec<(usize, ArrowColumnChunk)>, Error>;

fn run_lane(lane: Vec<(usize, Job)>) -> LaneResult {
    lane.into_iter()
        .map(|(i, job)| {
            job.run()
                .map(|c| (i, c))
                .map_err(|e| internal("encoding column", e))
        })
        .collect()
}
