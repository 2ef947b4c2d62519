//! [`MemoryCheckpoints`]: a checkpoint store that lives as long as one replay.

use async_trait::async_trait;
use shardline_core::ports::{Checkpoint, CheckpointKey, CheckpointStore};
use shardline_core::{Error, Result, SequenceNumber};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Checkpoints in memory, with the conditional-write semantics of the port.
#[derive(Debug, Default)]
pub struct MemoryCheckpoints {
    map: Mutex<BTreeMap<CheckpointKey, Checkpoint>>,
}

impl MemoryCheckpoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<CheckpointKey, Checkpoint>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl CheckpointStore for MemoryCheckpoints {
    async fn get(&self, key: &CheckpointKey) -> Result<Option<Checkpoint>> {
        Ok(self.lock().get(key).cloned())
    }

    async fn put(
        &self,
        key: &CheckpointKey,
        sequence_number: &SequenceNumber,
        owner: Option<&str>,
        expected_counter: Option<u64>,
    ) -> Result<Checkpoint> {
        let mut map = self.lock();
        let counter = map.get(key).map_or(0, |c| c.lease_counter);
        if let Some(expected) = expected_counter
            && expected != counter
        {
            return Err(Error::Conflict(format!(
                "lease counter of {} is {counter}, not {expected}",
                key.shard
            )));
        }
        let cp = Checkpoint {
            sequence_number: sequence_number.clone(),
            lease_owner: owner.map(str::to_string),
            lease_counter: counter + 1,
            updated_ms: shardline_core::time::now_ms(),
        };
        map.insert(key.clone(), cp.clone());
        Ok(cp)
    }

    async fn list(&self, consumer: Option<&str>) -> Result<Vec<(CheckpointKey, Checkpoint)>> {
        Ok(self
            .lock()
            .iter()
            .filter(|(k, _)| consumer.is_none_or(|c| c == k.consumer))
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect())
    }

    async fn reset(&self, consumer: &str, stream: &str) -> Result<usize> {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|k, _| !(k.consumer == consumer && k.stream == stream));
        Ok(before - map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_checkpoint_store_conformance_suite() {
        shardline_core::conformance::checkpoint_store(&MemoryCheckpoints::default()).await;
    }
}
