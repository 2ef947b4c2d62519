//! `shardline dlq list`: records that were not valid metric events, with why.

use anyhow::{Context, Result};
use shardline_core::ports::DeadLetterStore;
use std::io::Write;

use super::{list_format, write_table};
use crate::cli::{DlqCommand, ListFormat};
use crate::data::Data;
use crate::io::Io;

/// Runs a `dlq` subcommand.
pub async fn run(data: &Data, io: &mut Io, command: DlqCommand) -> Result<i32> {
    let DlqCommand::List { consumer, format } = command;
    let backends = data.backends().await?;
    let letters = backends
        .dead_letters
        .list(consumer.as_deref())
        .await
        .context("cannot read the dead-letter store")?;
    match list_format(format, io) {
        ListFormat::Json => {
            for l in &letters {
                let line = serde_json::json!({
                    "at": shardline_core::time::format_rfc3339_ms(l.at_ms),
                    "consumer": l.consumer,
                    "stream": l.stream,
                    "shard": l.shard.to_string(),
                    "sequence_number": l.sequence_number.as_str(),
                    "partition_key": l.partition_key,
                    "reason": l.reason,
                    "data": String::from_utf8_lossy(&l.data),
                });
                writeln!(io.out, "{line}")?;
            }
        }
        ListFormat::Table => {
            let rows: Vec<Vec<String>> = letters
                .iter()
                .map(|l| {
                    vec![
                        shardline_core::time::format_rfc3339_ms(l.at_ms),
                        l.consumer.clone(),
                        l.shard.to_string(),
                        l.sequence_number.to_string(),
                        l.reason.clone(),
                        String::from_utf8_lossy(&l.data).chars().take(120).collect(),
                    ]
                })
                .collect();
            write_table(
                &mut io.out,
                &["AT", "CONSUMER", "SHARD", "SEQUENCE", "REASON", "DATA"],
                &rows,
            )?;
        }
    }
    writeln!(io.err, "{} dead letters", letters.len())?;
    Ok(0)
}
