//! The `shardline` binary: parses the command line and runs the command.

use std::process::ExitCode;

fn main() -> ExitCode {
    shardline::run_from_args()
}
