//! The `alerts` function's bootstrap: the alerts sink behind a Kinesis event source mapping.
//! Settings: `SHARDLINE_FUNCTION_CONFIG`; backends: `SHARDLINE_BACKEND`, `SHARDLINE_DATA`
//! (see the shardline-lambda crate docs).

/// The allocator the `shardline` binary uses (its per-thread caches make many small
/// allocations cheap).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    shardline_lambda::bootstrap::run_sink(shardline_lambda::SinkKind::Alerts)
}
