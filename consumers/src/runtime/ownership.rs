//! Which shards this consumer reads: the one place where shard ownership is decided.
//!
//! Today a consumer owns every shard of its stream: [`Consumer::refresh_shards`] lists the
//! shards, adopts each new one from its checkpoint (or the configured starting position) and
//! tells known ones that they closed. Nothing else in the runtime adds or drops a shard:
//! reading (`read`), dispatching and checkpointing (`consumer`) only work on the shards adopted
//! here.
//!
//! Under a lease worker (`shardline consume`, see [`super::lease`]) a consumer adopts only the
//! shards whose lease the worker holds ([`Consumer::with_leases`]); the worker takes, renews
//! and lets go of the leases, and a consumer that still holds state for a lost shard stops
//! ([`super::ConsumerError::LeaseLost`]) and is started again without it. Its checkpoints are
//! lease checkpoints, written only while the lease is held.

use shardline_core::ports::CheckpointKey;
use std::sync::Arc;
use tracing::info;

use super::consumer::Consumer;
use super::error::{ConsumerError, Result};
use super::retry::with_retry;
use super::shard::ShardState;

impl Consumer {
    /// Lists the stream's shards; new ones start from their checkpoint or the configured
    /// position, known ones learn whether they have closed.
    pub(super) async fn refresh_shards(&mut self) -> Result<()> {
        let stream = Arc::clone(&self.stream);
        let name = self.config.stream.clone();
        let listed = with_retry(
            &self.config.retry,
            self.stop.as_ref(),
            self.track("stream"),
            "list_shards",
            || {
                let (stream, name) = (Arc::clone(&stream), name.clone());
                async move { stream.list_shards(&name).await }
            },
        )
        .await
        .map_err(|e| self.stream_error("list_shards".into(), e))?;
        for desc in listed {
            if let Some(state) = self.shards.get_mut(&desc.shard_id) {
                state.ending = desc.ending_sequence_number;
                continue;
            }
            if self.leases.as_ref().is_some_and(|l| !l.owns(desc.shard_id)) {
                continue;
            }
            let key = CheckpointKey {
                consumer: self.config.name.clone(),
                stream: self.config.stream.clone(),
                shard: desc.shard_id,
            };
            let store = Arc::clone(&self.checkpoints);
            let checkpoint = with_retry(
                &self.config.retry,
                self.stop.as_ref(),
                self.track("checkpoint store"),
                "checkpoint get",
                || {
                    let (store, key) = (Arc::clone(&store), key.clone());
                    async move { store.get(&key).await }
                },
            )
            .await
            .map_err(|source| ConsumerError::Checkpoint {
                shard: desc.shard_id,
                source,
            })?
            .map(|c| c.sequence_number);
            info!(shard = %desc.shard_id, checkpoint = ?checkpoint.as_ref().map(|c| c.to_string()), "shard added");
            let parents = desc
                .parent_shard_id
                .into_iter()
                .chain(desc.adjacent_parent_shard_id)
                .collect();
            let state = ShardState::new(parents, desc.ending_sequence_number, checkpoint.clone());
            let finished = state.finished;
            self.status.shard(desc.shard_id, |p| {
                p.checkpointed = checkpoint;
                p.finished = finished;
            });
            self.shards.insert(desc.shard_id, state);
        }
        Ok(())
    }
}
