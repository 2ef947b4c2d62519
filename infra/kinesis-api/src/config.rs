//! [`ServeConfig`]: where the endpoint listens and how it answers (the `[serve]` section).
//!
//! ```toml
//! [serve]
//! enabled = true                 # `shardline up` serves the endpoint on its own log
//! listen = "127.0.0.1:4567"
//! region = "us-east-1"           # the region in ARNs and signatures' scope
//! account_id = "000000000000"
//! access_keys = []               # e.g. [{ id = "AKID", secret = "..." }]: SigV4 required
//! max_request_size = "8MiB"
//! request_timeout = "30s"
//! shard_limit = 1000
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardline_core::units::ByteSize;

/// The endpoint's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Whether `shardline up` also serves the endpoint (`shardline serve` always does).
    pub enabled: bool,
    /// Address and port to listen on. Loopback by default; anything else is announced loudly.
    pub listen: SocketAddr,
    /// The region ARNs name and signatures must be scoped to.
    pub region: String,
    /// The account id ARNs and messages name (12 digits).
    pub account_id: String,
    /// When not empty, every request must carry a valid SigV4 signature by one of these keys.
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
    /// Requests with larger bodies are refused with 413 before they are read whole.
    pub max_request_size: ByteSize,
    /// How long a client may take to send a request's headers, and then its body.
    #[serde(with = "shardline_core::units::duration")]
    pub request_timeout: Duration,
    /// Open shards the account may hold (CreateStream, SplitShard and UpdateShardCount past it
    /// fail with LimitExceededException; DescribeLimits reports it).
    pub shard_limit: u32,
}

/// An access key the endpoint accepts signatures from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// The access key id (`AKIA...`).
    pub id: String,
    /// The secret access key.
    pub secret: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"…")
            .finish()
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 4567)),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            access_keys: Vec::new(),
            max_request_size: ByteSize(8 * 1024 * 1024),
            request_timeout: Duration::from_secs(30),
            shard_limit: 1000,
        }
    }
}

impl ServeConfig {
    /// Checks the settings, naming the one that is wrong.
    ///
    /// # Errors
    /// A message naming the key and what it must be.
    pub fn validate(&self) -> Result<(), String> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "serve.account_id = {:?}: must be 12 digits",
                self.account_id
            ));
        }
        if self.region.is_empty() || self.region.contains(char::is_whitespace) {
            return Err(format!(
                "serve.region = {:?}: must be a region name such as us-east-1",
                self.region
            ));
        }
        if self.max_request_size.bytes() < 64 * 1024 {
            return Err("serve.max_request_size must be at least 64KiB".into());
        }
        if self.request_timeout.is_zero() {
            return Err("serve.request_timeout must be more than 0s".into());
        }
        if let Some(k) = self
            .access_keys
            .iter()
            .find(|k| k.id.is_empty() || k.secret.is_empty())
        {
            return Err(format!(
                "serve.access_keys: key {:?} needs both an id and a secret",
                k.id
            ));
        }
        Ok(())
    }

    /// Whether the listen address is reachable only from this machine.
    pub fn is_loopback(&self) -> bool {
        self.listen.ip().is_loopback()
    }
}
