//! `shardline config show`.

use anyhow::Result;

use crate::cli::ConfigCommand;
use crate::config::Config;

/// Prints the effective configuration.
pub fn run(config: &Config, command: ConfigCommand) -> Result<i32> {
    match command {
        ConfigCommand::Show => {
            print!("{}", config.to_toml()?);
            Ok(0)
        }
    }
}
