//! The `shardline` binary: parses the command line and runs the command.

use std::process::ExitCode;

/// Per-thread caches make the consumers' many small allocations cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    shardline::alloc::tune();
    shardline::run_from_args()
}
