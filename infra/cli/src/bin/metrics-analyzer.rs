//! The `metrics-analyzer` function's bootstrap: the flow's `metrics-analyzer` task as a Lambda function.
//! Backends: `SHARDLINE_BACKEND`, `SHARDLINE_DATA`; settings: `SHARDLINE_CONFIG` and
//! `SHARDLINE__SECTION__KEY` variables, as for `shardline`.

/// The allocator the `shardline` binary uses (its per-thread caches make many small
/// allocations cheap).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    shardline::functions::run_task_bootstrap("metrics-analyzer")
}
