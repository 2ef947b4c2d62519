//! `shardline dlq list`: records that were not valid metric events, with why.
//!
//! Text output: per letter, a line `<time> <consumer> <shard> <sequence number> <partition
//! key>: <reason>`, then the data indented on one line: `data: <text>` when the bytes are
//! UTF-8 (control characters shown as `\u{..}` escapes, so a letter stays two lines; cut
//! after [`TEXT_CHARS`] characters), else `data (base64): <base64>`. JSON output: one object
//! per letter in the store's form (`data` as text, or base64 with `"data_encoding":
//! "base64"`), the data whole.

use anyhow::{Context, Result};
use shardline_core::ports::DeadLetter;
use std::io::Write;

use super::write_table;
use crate::cli::{DlqCommand, DlqFormat};
use crate::data::Data;
use crate::io::Io;

/// Most characters of data the text output shows per letter.
pub const TEXT_CHARS: usize = 2000;

/// Runs a `dlq` subcommand.
pub async fn run(data: &Data, io: &mut Io, command: DlqCommand) -> Result<i32> {
    let DlqCommand::List { consumer, format } = command;
    let backends = data.backends().await?;
    let letters = backends
        .dead_letters
        .list(consumer.as_deref())
        .await
        .context("cannot read the dead-letter store")?;
    let format = format.unwrap_or(if io.terminal {
        DlqFormat::Table
    } else {
        DlqFormat::Text
    });
    match format {
        DlqFormat::Json => {
            for l in &letters {
                writeln!(io.out, "{}", serde_json::to_string(l)?)?;
            }
        }
        DlqFormat::Text => {
            for l in &letters {
                write!(io.out, "{}", render_text(l))?;
            }
        }
        DlqFormat::Table => {
            let rows: Vec<Vec<String>> = letters
                .iter()
                .map(|l| {
                    let (data, encoding) = l.data_text();
                    let data: String = data.chars().take(120).collect();
                    vec![
                        shardline_core::time::format_rfc3339_ms(l.at_ms),
                        l.consumer.clone(),
                        l.shard.to_string(),
                        l.sequence_number.to_string(),
                        one_line(&l.reason),
                        match encoding {
                            Some(_) => format!("base64:{}", one_line(&data)),
                            None => one_line(&data),
                        },
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

/// Text with control characters escaped, so it stays on one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The two text lines of one letter.
pub fn render_text(l: &DeadLetter) -> String {
    let head = format!(
        "{} {} {} {} {}: {}\n",
        shardline_core::time::format_rfc3339_ms(l.at_ms),
        l.consumer,
        l.shard,
        l.sequence_number,
        one_line(&l.partition_key),
        one_line(&l.reason)
    );
    let (data, encoding) = l.data_text();
    let label = if encoding.is_some() {
        "data (base64)"
    } else {
        "data"
    };
    let chars = data.chars().count();
    let shown: String = data.chars().take(TEXT_CHARS).collect();
    let cut = if chars > TEXT_CHARS {
        format!(
            " ... ({} bytes in all; --format json shows the whole record)",
            l.data.len()
        )
    } else {
        String::new()
    };
    format!("{head}    {label}: {}{cut}\n", one_line(&shown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use shardline_core::{SequenceNumber, ShardId};

    fn letter(data: &[u8]) -> DeadLetter {
        DeadLetter {
            consumer: "s3-parquet".into(),
            stream: "metrics".into(),
            shard: ShardId(2),
            sequence_number: SequenceNumber::try_from("4960".to_string()).expect("decimal"),
            partition_key: "i-1\r\n".into(),
            reason: "malformed: not a metric event".into(),
            data: Bytes::copy_from_slice(data),
            at_ms: 1_796_000_000_000,
        }
    }

    #[test]
    fn text_when_utf8_base64_otherwise_two_lines_each() {
        let text = render_text(&letter(b"{\"a\":\"x\r\ny\"}"));
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("i-1\\u{d}\\u{a}:"), "{text}");
        assert!(
            text.ends_with("    data: {\"a\":\"x\\u{d}\\u{a}y\"}\n"),
            "{text}"
        );
        let binary = render_text(&letter(b"{\"a\":\"\xff\"}"));
        assert!(
            binary.ends_with("    data (base64): eyJhIjoi/yJ9\n"),
            "{binary}"
        );
        let long = render_text(&letter(&vec![b'x'; 5000]));
        assert!(long.contains("... (5000 bytes in all"), "{long}");
    }
}
