//! Shard lineages: the groups of shards a replay may read independently of each other.
//!
//! A consumer finishes a parent shard before it reads the parent's children (per-key order
//! across a split or merge). Two shards with no parent or child link between them, directly
//! or through other shards, have no such order: their records can be read and written at the
//! same time. [`lineages`] groups the shards into the connected components of the
//! parent-child graph (split parents, merge parents and adjacent parents alike), each
//! component closed under lineage, so a consumer reading one component sees every parent it
//! has to wait for.
//!
//! Invariants: every shard given is in exactly one group; a shard and any of its parents
//! among the shards given are in the same group; groups and the shards in them are in
//! ascending shard order.

use shardline_core::ShardId;
use shardline_core::stream::ShardDescription;
use std::collections::BTreeMap;

/// The connected components of `shards` under the parent-child relation (parents outside
/// `shards` are ignored).
pub fn lineages(shards: &[ShardDescription]) -> Vec<Vec<ShardId>> {
    // Union-find over the shards given, by index.
    let index: BTreeMap<ShardId, usize> = shards
        .iter()
        .enumerate()
        .map(|(i, s)| (s.shard_id, i))
        .collect();
    let mut parent: Vec<usize> = (0..shards.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, s) in shards.iter().enumerate() {
        for p in [s.parent_shard_id, s.adjacent_parent_shard_id]
            .into_iter()
            .flatten()
        {
            if let Some(&j) = index.get(&p) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: BTreeMap<ShardId, Vec<ShardId>> = BTreeMap::new();
    let mut first_of_root: BTreeMap<usize, ShardId> = BTreeMap::new();
    let mut order: Vec<(ShardId, usize)> = index.iter().map(|(&id, &i)| (id, i)).collect();
    order.sort();
    for (id, i) in order {
        let r = root(&mut parent, i);
        let first = *first_of_root.entry(r).or_insert(id);
        groups.entry(first).or_default().push(id);
    }
    groups.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardline_core::SequenceNumber;
    use shardline_core::stream::HashKeyRange;

    fn shard(id: u32, parent: Option<u32>, adjacent: Option<u32>) -> ShardDescription {
        ShardDescription {
            shard_id: ShardId(id),
            hash_key_range: HashKeyRange { start: 0, end: 0 },
            parent_shard_id: parent.map(ShardId),
            adjacent_parent_shard_id: adjacent.map(ShardId),
            starting_sequence_number: SequenceNumber::before_all(),
            ending_sequence_number: None,
        }
    }

    fn ids(groups: &[Vec<ShardId>]) -> Vec<Vec<u32>> {
        groups
            .iter()
            .map(|g| g.iter().map(|s| s.0).collect())
            .collect()
    }

    #[test]
    fn unrelated_shards_are_groups_of_their_own() {
        let shards: Vec<_> = (0..4).map(|i| shard(i, None, None)).collect();
        assert_eq!(
            ids(&lineages(&shards)),
            vec![vec![0], vec![1], vec![2], vec![3]]
        );
    }

    #[test]
    fn splits_and_merges_join_their_lineage() {
        // 0 and 1 open; 2 split into 4 and 5; 4 and 3 merged into 6 (3 listed after 6).
        let shards = vec![
            shard(0, None, None),
            shard(1, None, None),
            shard(2, None, None),
            shard(6, Some(4), Some(3)),
            shard(4, Some(2), None),
            shard(5, Some(2), None),
            shard(3, None, None),
        ];
        assert_eq!(
            ids(&lineages(&shards)),
            vec![vec![0], vec![1], vec![2, 3, 4, 5, 6]]
        );
    }

    #[test]
    fn parents_outside_the_shards_given_are_ignored() {
        let shards = vec![shard(4, Some(2), None), shard(5, Some(2), None)];
        assert_eq!(ids(&lineages(&shards)), vec![vec![4], vec![5]]);
        assert!(lineages(&[]).is_empty());
    }
}
