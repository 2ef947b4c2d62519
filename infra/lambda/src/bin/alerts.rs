//! The `alerts` function's bootstrap: the alerts sink behind a Kinesis event source mapping.
//! Settings: `SHARDLINE_FUNCTION_CONFIG`; backends: `SHARDLINE_BACKEND`, `SHARDLINE_DATA`
//! (see the shardline-lambda crate docs).

fn main() -> std::process::ExitCode {
    shardline_lambda::bootstrap::run_sink(shardline_lambda::SinkKind::Alerts)
}
