//! Stream tags (AddTagsToStream, RemoveTagsFromStream, ListTagsForStream), kept in the stream
//! metadata: a change commits a new `stream.json` like any other metadata change.
//!
//! Rules (Kinesis's): at most 50 tags per stream; keys 1 to 128 characters, values 0 to 256.
//! Adding a key that exists replaces its value.

use std::collections::BTreeMap;

use crate::error::LogError;
use crate::log::Log;

/// Most tags a stream may carry.
pub const MAX_TAGS: usize = 50;

impl Log {
    /// The stream's tags, sorted by key.
    ///
    /// # Errors
    /// Unknown stream.
    pub fn tags(&self, name: &str) -> Result<BTreeMap<String, String>, LogError> {
        Ok(self.inner.stream(name)?.meta.tags.clone())
    }

    /// Adds (or replaces) tags.
    ///
    /// # Errors
    /// Unknown stream; a key or value of the wrong length; more than 50 tags in all.
    pub async fn add_tags(
        &self,
        name: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), LogError> {
        for (k, v) in &tags {
            let (kc, vc) = (k.chars().count(), v.chars().count());
            if !(1..=128).contains(&kc) || vc > 256 {
                return Err(LogError::InvalidArgument(format!(
                    "tag `{k}`: keys must be 1 to 128 characters and values at most 256"
                )));
            }
        }
        self.change_tags(name, |all| {
            all.extend(tags);
            if all.len() > MAX_TAGS {
                return Err(LogError::InvalidArgument(format!(
                    "stream \"{name}\" would have {} tags; at most {MAX_TAGS}",
                    all.len()
                )));
            }
            Ok(())
        })
        .await
    }

    /// Removes tags by key (keys that are not there are ignored).
    ///
    /// # Errors
    /// Unknown stream; I/O errors.
    pub async fn remove_tags(&self, name: &str, keys: &[String]) -> Result<(), LogError> {
        self.change_tags(name, |all| {
            for k in keys {
                all.remove(k);
            }
            Ok(())
        })
        .await
    }

    async fn change_tags(
        &self,
        name: &str,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        let _admin = self.inner.admin.lock().await;
        let s = self.inner.stream(name)?;
        let mut meta = s.meta.clone();
        change(&mut meta.tags)?;
        if meta.tags == s.meta.tags {
            return Ok(());
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.commit(&s, meta, s.shards.clone()))
            .await
            .map_err(|e| LogError::Unavailable(format!("tag update failed: {e}")))??;
        Ok(())
    }
}
