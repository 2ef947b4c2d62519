//! A mapping's checkpoints: per shard, the last sequence number done (processed or given
//! up on). Lambda keeps these itself, not in the stream's lease table, and so does the
//! runner: one JSON file per mapping, `<dir>/checkpoints.json`.
//!
//! Invariant: the file is replaced whole (temporary file, fsync, rename, directory fsync),
//! so a crash leaves the old checkpoints or the new ones, never a torn file.

use shardline_core::{SequenceNumber, ShardId};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The checkpoints of one mapping.
#[derive(Debug)]
pub struct MappingCheckpoints {
    path: PathBuf,
    shards: BTreeMap<ShardId, SequenceNumber>,
}

impl MappingCheckpoints {
    /// Loads `<dir>/checkpoints.json` (none yet: empty), creating `dir`.
    ///
    /// # Errors
    /// When the directory cannot be created or the file is unreadable or not checkpoints.
    pub fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the mapping directory {}: {e}", dir.display()))?;
        let path = dir.join("checkpoints.json");
        let shards = match std::fs::read(&path) {
            Ok(bytes) => {
                let raw: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|e| {
                    format!(
                        "{} is not a checkpoint file ({e}); move it away to start the mapping over",
                        path.display()
                    )
                })?;
                let mut shards = BTreeMap::new();
                for (shard, seq) in raw {
                    let id: ShardId = shard
                        .parse()
                        .map_err(|_| format!("{}: {shard:?} is not a shard id", path.display()))?;
                    let seq = SequenceNumber::try_from(seq.clone()).map_err(|_| {
                        format!("{}: {seq:?} is not a sequence number", path.display())
                    })?;
                    shards.insert(id, seq);
                }
                shards
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Self { path, shards })
    }

    /// The checkpoint of `shard`.
    pub fn get(&self, shard: ShardId) -> Option<&SequenceNumber> {
        self.shards.get(&shard)
    }

    /// Every checkpoint.
    pub fn all(&self) -> &BTreeMap<ShardId, SequenceNumber> {
        &self.shards
    }

    /// Records `seq` as done in `shard` and writes the file.
    ///
    /// # Errors
    /// When the file cannot be written; the checkpoint in memory is unchanged then.
    pub fn put(&mut self, shard: ShardId, seq: SequenceNumber) -> Result<(), String> {
        if self.shards.get(&shard) >= Some(&seq) {
            return Ok(());
        }
        let mut next = self.shards.clone();
        next.insert(shard, seq);
        let raw: BTreeMap<String, &str> = next
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_str()))
            .collect();
        let text = serde_json::to_vec_pretty(&raw).unwrap_or_default();
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        self.shards = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_survive_reopening_and_never_move_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seq = |s: &str| SequenceNumber::try_from(s.to_string()).expect("seq");
        let mut c = MappingCheckpoints::open(dir.path()).expect("open");
        c.put(ShardId(1), seq("20")).expect("put");
        c.put(ShardId(1), seq("10")).expect("older is ignored");
        c.put(ShardId(0), seq("5")).expect("put");
        let c = MappingCheckpoints::open(dir.path()).expect("reopen");
        assert_eq!(c.get(ShardId(1)), Some(&seq("20")));
        assert_eq!(c.get(ShardId(0)), Some(&seq("5")));
        std::fs::write(dir.path().join("checkpoints.json"), b"{oops").expect("write");
        let err = MappingCheckpoints::open(dir.path()).expect_err("damaged");
        assert!(err.contains("checkpoints.json"), "{err}");
    }
}
