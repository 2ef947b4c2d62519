//! [`ScanStats`]: what one executed query read from the Parquet output, taken from its
//! physical plan after it ran.
//!
//! # Layout
//! - [`ScanStats::of`] walks every node of an executed plan: the files each Parquet scan was
//!   given (after the listing and partition pruning), and the scans' own counters: files
//!   skipped whole by their column statistics, files opened, bytes read.
//!
//! Invariants: counters are summed over every scan node and partition of the plan; an object
//! split into byte ranges counts once in `files_listed` (its ranges count separately in
//! `files_pruned`); a plan that has not run reports its files and zero for the counters.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricValue;

/// What the Parquet scans of one query read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Objects listed for the scans: those in the partitions the filters left (the listing
    /// never goes into a partition a filter excludes).
    pub files_listed: usize,
    /// Of those, objects skipped without reading their data: their statistics (min/max of
    /// the filtered columns) showed no row could match.
    pub files_pruned: usize,
    /// Bytes read from the objects (footers, pages).
    pub bytes_scanned: u64,
}

impl ScanStats {
    /// The statistics of every Parquet scan in `plan` (run or not).
    pub fn of(plan: &Arc<dyn ExecutionPlan>) -> ScanStats {
        let mut stats = ScanStats::default();
        stats.add(plan.as_ref());
        stats
    }

    fn add(&mut self, plan: &dyn ExecutionPlan) {
        if let Some(scan) = plan.downcast_ref::<DataSourceExec>()
            && let Some(files) = scan.data_source().downcast_ref::<FileScanConfig>()
        {
            // A large object may be split into byte ranges read in parallel: count objects.
            let objects: HashSet<&str> = files
                .file_groups
                .iter()
                .flat_map(|g| g.iter())
                .map(|f| f.object_meta.location.as_ref())
                .collect();
            self.files_listed += objects.len();
            if let Some(metrics) = plan.metrics() {
                for m in metrics.iter() {
                    match m.value() {
                        MetricValue::PruningMetrics {
                            name,
                            pruning_metrics,
                        } if name == "files_ranges_pruned_statistics" => {
                            self.files_pruned += pruning_metrics.pruned();
                        }
                        v if v.name() == "bytes_scanned" => {
                            self.bytes_scanned += v.as_usize() as u64;
                        }
                        _ => {}
                    }
                }
            }
        }
        for child in plan.children() {
            self.add(child.as_ref());
        }
    }
}
