//! Batches encoded for the item table: every item's key and value one after another in one
//! buffer, validated against the table's schema before anything is written.
//!
//! Layout of an entry: key = [`keys::encode_str`]`(table)` ++ the [`keys`] encoding of
//! (partition key, sort key); value = the item in [`codec`]'s binary form.
//!
//! Invariants: a batch holds every item or fails as a whole (a missing or mistyped key
//! attribute, or an item over [`MAX_ITEM_BYTES`], names the table and the attribute); items
//! read attribute by attribute ([`ItemSource`]) encode to the bytes the same items built
//! would.

use shardline_core::ports::{AttrRef, Item, ItemIter, ItemSource, TableSchema};
use shardline_core::{Error, Result};

use super::{MAX_ITEM_BYTES, codec, keys};

/// A batch's items encoded: keys and values one after another in one buffer.
#[derive(Default)]
pub(super) struct Encoded {
    pub(super) bytes: Vec<u8>,
    pub(super) entries: Vec<Entry>,
    /// Length of the table-name prefix every key starts with.
    pub(super) prefix_len: usize,
    /// Scratch of [`Inner::ingest`]: (first 32 key bytes, entry index) in key order.
    pub(super) order: Vec<([u128; 2], usize)>,
}

/// One item of an [`Encoded`] batch: its key is `bytes[start..key_end]`, its value
/// `bytes[key_end..end]`.
pub(super) struct Entry {
    start: usize,
    key_end: usize,
    end: usize,
}

impl Encoded {
    /// Encodes `items` into `self`'s buffers (empty, maybe with capacity kept from an earlier
    /// batch). Validates every item (a bad item fails the whole batch before anything is
    /// written); each item is dropped once encoded.
    pub(super) fn encode(self, schema: &TableSchema, items: ItemIter) -> Result<Self> {
        let prefix = table_prefix(&schema.name);
        let mut out = self;
        out.prefix_len = prefix.len();
        let expected = items.size_hint().0;
        out.entries.reserve(expected);
        for item in items {
            let start = out.bytes.len();
            out.bytes.extend_from_slice(&prefix);
            item_key(schema, &item, &mut out.bytes)?;
            let key_end = out.bytes.len();
            codec::encode_into(&item, &mut out.bytes);
            out.push_entry(schema, start, key_end, expected)?;
        }
        Ok(out)
    }

    /// [`Encoded::encode`] reading each item attribute by attribute: no [`Item`] is built
    /// unless the source gives attributes out of name order (then the item is built and
    /// sorted) or 128 attributes or more. The bytes are those `encode` writes for the same
    /// items.
    pub(super) fn encode_source(
        self,
        schema: &TableSchema,
        items: &dyn ItemSource,
    ) -> Result<Self> {
        let prefix = table_prefix(&schema.name);
        let n = items.len();
        let mut out = self;
        out.prefix_len = prefix.len();
        out.entries.reserve(n);
        let (pk, pk_ty) = &schema.partition_key;
        let sk = schema.sort_key.as_ref();
        // Scratch reused for every item: the value, the two key parts, the previous name.
        let mut value = Vec::new();
        let mut pk_bytes = Vec::new();
        let mut sk_bytes = Vec::new();
        let mut previous = String::new();
        for i in 0..n {
            value.clear();
            pk_bytes.clear();
            sk_bytes.clear();
            let at = codec::start(&mut value);
            let mut count = 0usize;
            let mut in_order = true;
            // The previous name: its number when known (compared by rank), else `previous`.
            let mut previous_known: Option<usize> = None;
            let (mut has_pk, mut has_sk) = (false, false);
            let mut key_error = None;
            items.visit(i, &mut |name: &str, v: AttrRef<'_>| {
                let known = codec::put_attr(&mut value, name, v);
                if count > 0 {
                    let after = match (known, previous_known) {
                        (Some(k), Some(p)) => codec::KNOWN_RANKS[k] > codec::KNOWN_RANKS[p],
                        (_, Some(p)) => name > codec::KNOWN_NAMES[p - 1],
                        (_, None) => name > previous.as_str(),
                    };
                    in_order &= after;
                }
                previous_known = known;
                if known.is_none() {
                    previous.clear();
                    previous.push_str(name);
                }
                count += 1;
                let part = if name == pk.as_str() {
                    has_pk = true;
                    Some((&mut pk_bytes, *pk_ty))
                } else if let Some((_, sk_ty)) = sk.filter(|(sk, _)| name == sk.as_str()) {
                    has_sk = true;
                    Some((&mut sk_bytes, *sk_ty))
                } else {
                    None
                };
                if let Some((bytes, ty)) = part
                    && let Err(e) = keys::encode_key_ref(bytes, name, ty, v)
                {
                    key_error.get_or_insert(e);
                }
            });
            let start = out.bytes.len();
            out.bytes.extend_from_slice(&prefix);
            if !in_order || !codec::set_count(&mut value, at, count) {
                // Built and sorted as an `Item`, then encoded as `of` encodes it.
                let item = items.item(i);
                item_key(schema, &item, &mut out.bytes)?;
                let key_end = out.bytes.len();
                codec::encode_into(&item, &mut out.bytes);
                out.push_entry(schema, start, key_end, n)?;
                continue;
            }
            if let Some(e) = key_error {
                return Err(e);
            }
            if !has_pk {
                return Err(missing_key(schema, "partition", pk));
            }
            if let (Some((sk, _)), false) = (sk, has_sk) {
                return Err(missing_key(schema, "sort", sk));
            }
            out.bytes.extend_from_slice(&pk_bytes);
            out.bytes.extend_from_slice(&sk_bytes);
            let key_end = out.bytes.len();
            out.bytes.extend_from_slice(&value);
            out.push_entry(schema, start, key_end, n)?;
        }
        Ok(out)
    }

    #[cfg(test)]
    fn of(schema: &TableSchema, items: ItemIter) -> Result<Self> {
        Encoded::default().encode(schema, items)
    }

    #[cfg(test)]
    fn of_source(schema: &TableSchema, items: &dyn ItemSource) -> Result<Self> {
        Encoded::default().encode_source(schema, items)
    }

    /// Records the item written at `bytes[start..]`, its key ending at `key_end`.
    fn push_entry(
        &mut self,
        schema: &TableSchema,
        start: usize,
        key_end: usize,
        expected: usize,
    ) -> Result<()> {
        let len = self.bytes.len() - key_end;
        if len > MAX_ITEM_BYTES {
            return Err(Error::InvalidArgument(format!(
                "an item for table {:?} encodes to {len} bytes; DynamoDB items are \
                 limited to 400 KiB, so split or shorten it",
                schema.name
            )));
        }
        self.entries.push(Entry {
            start,
            key_end,
            end: self.bytes.len(),
        });
        if self.entries.len() == 1 {
            // Sized from the first item, so a large batch is not copied as it grows.
            self.bytes.reserve(
                expected
                    .saturating_sub(1)
                    .saturating_mul(self.bytes.len() + 16),
            );
        }
        Ok(())
    }

    /// The batch emptied, its buffers' capacity kept.
    pub(super) fn cleared(mut self) -> Self {
        self.bytes.clear();
        self.entries.clear();
        self.order.clear();
        self.prefix_len = 0;
        self
    }

    pub(super) fn key(&self, entry: &Entry) -> &[u8] {
        &self.bytes[entry.start..entry.key_end]
    }

    pub(super) fn value(&self, entry: &Entry) -> &[u8] {
        &self.bytes[entry.key_end..entry.end]
    }
}

/// The key prefix shared by every item of `table`.
pub(super) fn table_prefix(table: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(table.len() + 2);
    keys::encode_str(&mut out, table);
    out
}

/// Appends the encoded (partition, sort) key of an item to `key`.
fn item_key(schema: &TableSchema, item: &Item, key: &mut Vec<u8>) -> Result<(), Error> {
    let (pk, pk_ty) = &schema.partition_key;
    let value = item
        .get(pk)
        .ok_or_else(|| missing_key(schema, "partition", pk))?;
    keys::encode_key(key, pk, *pk_ty, value)?;
    if let Some((sk, sk_ty)) = &schema.sort_key {
        let value = item
            .get(sk)
            .ok_or_else(|| missing_key(schema, "sort", sk))?;
        keys::encode_key(key, sk, *sk_ty, value)?;
    }
    Ok(())
}

/// The error for an item without its `which` ("partition" or "sort") key attribute `name`.
fn missing_key(schema: &TableSchema, which: &str, name: &str) -> Error {
    Error::InvalidArgument(format!(
        "item for table {:?} lacks its {which} key attribute {name:?}",
        schema.name
    ))
}

#[cfg(test)]
mod source_tests {
    //! Items read attribute by attribute encode to exactly the bytes of the same items built.
    use super::*;
    use shardline_core::ports::{AttributeValue, KeyType};

    struct Source(Vec<Vec<(&'static str, AttributeValue)>>);

    impl ItemSource for Source {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn visit(&self, i: usize, f: &mut dyn FnMut(&str, AttrRef<'_>)) {
            for (name, value) in &self.0[i] {
                if let Some(v) = value.attr_ref() {
                    f(name, v);
                }
            }
        }
    }

    fn schema() -> TableSchema {
        TableSchema {
            name: "InfraMetrics".into(),
            partition_key: ("metric_id".into(), KeyType::S),
            sort_key: Some(("timestamp".into(), KeyType::N)),
        }
    }

    fn attrs(i: usize) -> Vec<(&'static str, AttributeValue)> {
        vec![
            (
                "arrival_ms",
                AttributeValue::N(format!("{}", 1_771_500_000_000u64 + i as u64)),
            ),
            ("custom", AttributeValue::S(format!("not a known name {i}"))),
            (
                "metric_id",
                AttributeValue::S(format!("cpu-i-{:06}", i % 7)),
            ),
            (
                "timestamp",
                AttributeValue::N(format!("{}.5e3", 1_771_500 + i)),
            ),
            ("value", AttributeValue::N(format!("{}.25", i % 90))),
        ]
    }

    fn built(source: &Source) -> Vec<u8> {
        let items: Vec<Item> = (0..source.len()).map(|i| source.item(i)).collect();
        let encoded = Encoded::of(&schema(), Box::new(items.into_iter())).expect("encodes");
        encoded.bytes
    }

    #[test]
    fn a_batch_encoded_into_recycled_buffers_is_the_batch_alone() {
        let first = Source((0..300).map(attrs).collect());
        let second = Source((1000..1040).map(attrs).collect());
        let mut used = Encoded::of_source(&schema(), &first).expect("encodes");
        used.order.push(([0; 2], 7));
        let capacity = used.bytes.capacity();
        let reused = used
            .cleared()
            .encode_source(&schema(), &second)
            .expect("encodes");
        let fresh = Encoded::of_source(&schema(), &second).expect("encodes");
        assert_eq!(reused.entries.len(), 40);
        assert_eq!(reused.bytes, fresh.bytes);
        assert!(reused.order.is_empty());
        assert_eq!(reused.bytes.capacity(), capacity, "the buffer was reused");
    }

    #[test]
    fn visited_items_encode_like_built_ones() {
        let source = Source((0..50).map(attrs).collect());
        let visited = Encoded::of_source(&schema(), &source).expect("encodes");
        assert_eq!(visited.entries.len(), 50);
        assert_eq!(visited.bytes, built(&source));
    }

    #[test]
    fn attributes_out_of_order_or_repeated_are_sorted_as_an_item_would_be() {
        let source = Source(
            (0..20)
                .map(|i| {
                    let mut a = attrs(i);
                    a.reverse();
                    if i % 2 == 0 {
                        // A repeated name: the later value wins, as in `Item::insert`.
                        a.push(("value", AttributeValue::N("7".into())));
                    }
                    a
                })
                .collect(),
        );
        let visited = Encoded::of_source(&schema(), &source).expect("encodes");
        assert_eq!(visited.bytes, built(&source));
        let first = source.item(0);
        assert_eq!(first.get("value"), Some(&AttributeValue::N("7".into())));
    }

    #[test]
    fn a_missing_or_mistyped_key_fails_the_batch_with_the_attribute_named() {
        let mut items: Vec<_> = (0..3).map(attrs).collect();
        items[1].retain(|(n, _)| *n != "timestamp");
        let err = Encoded::of_source(&schema(), &Source(items))
            .err()
            .expect("fails");
        assert!(
            err.to_string().contains("sort key attribute \"timestamp\""),
            "{err}"
        );

        let mut items: Vec<_> = (0..3).map(attrs).collect();
        items[2][3].1 = AttributeValue::S("noon".into());
        let err = Encoded::of_source(&schema(), &Source(items))
            .err()
            .expect("fails");
        assert!(err.to_string().contains("\"timestamp\""), "{err}");
    }
}
