//! `shardline dlq list`: records that were not valid metric events, with why.

use anyhow::{Context, Result};

use crate::cli::DlqCommand;
use crate::config::Config;
use crate::wiring;

/// Runs a `dlq` subcommand.
pub async fn run(config: &Config, command: DlqCommand) -> Result<i32> {
    let DlqCommand::List { consumer } = command;
    let backends = wiring::open_backends(config).await?;
    let letters = backends
        .dead_letters
        .list(consumer.as_deref())
        .await
        .context("cannot read the dead-letter store")?;
    for l in &letters {
        println!(
            "{} {} {} {} {}: {}",
            shardline_core::time::format_rfc3339_ms(l.at_ms),
            l.consumer,
            l.shard,
            l.sequence_number,
            l.partition_key,
            l.reason
        );
        println!("    {}", String::from_utf8_lossy(&l.data));
    }
    eprintln!("{} dead letters", letters.len());
    Ok(0)
}
