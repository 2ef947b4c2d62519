//! The `shardline` command: wiring of backends from config, and every subcommand.
