//! [`Item`]: a DynamoDB-style item, attribute name to value.
//!
//! Items are built for every event the DynamoDB sink writes, so the type is made cheap to
//! build and drop: the attributes sit in one vector kept in name order, and names known in
//! advance are `&'static str` ([`AttrName`]) instead of allocated strings. It reads like an
//! ordered map (`get`, `insert`, `iter` in name order) and serialises as a JSON object.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;

use crate::ports::AttributeValue;

/// An attribute name: borrowed for `'static` (no allocation) or owned.
#[derive(Clone)]
pub struct AttrName(Cow<'static, str>);

impl AttrName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&'static str> for AttrName {
    fn from(name: &'static str) -> Self {
        AttrName(Cow::Borrowed(name))
    }
}

impl From<String> for AttrName {
    fn from(name: String) -> Self {
        AttrName(Cow::Owned(name))
    }
}

impl std::ops::Deref for AttrName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for AttrName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AttrName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq for AttrName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for AttrName {}

impl PartialOrd for AttrName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AttrName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for AttrName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for AttrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for AttrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An item: attribute names to values, in name order, each name once.
#[derive(Clone, Default, PartialEq)]
pub struct Item {
    /// Sorted by name, no name twice.
    attrs: Vec<(AttrName, AttributeValue)>,
}

impl Item {
    /// An empty item.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty item with room for `n` attributes.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            attrs: Vec::with_capacity(n),
        }
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        // Items are usually built in name order: check the end first.
        match self.attrs.last() {
            Some((last, _)) if last.as_str() < name => Err(self.attrs.len()),
            None => Err(0),
            _ => self.attrs.binary_search_by(|(n, _)| n.as_str().cmp(name)),
        }
    }

    /// Sets an attribute; returns the value it replaces.
    pub fn insert(
        &mut self,
        name: impl Into<AttrName>,
        value: AttributeValue,
    ) -> Option<AttributeValue> {
        let name = name.into();
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.attrs[i].1, value)),
            Err(i) => {
                self.attrs.insert(i, (name, value));
                None
            }
        }
    }

    /// The value of an attribute.
    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        self.find(name).ok().map(|i| &self.attrs[i].1)
    }

    /// Whether the item has the attribute.
    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Removes an attribute; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<AttributeValue> {
        self.find(name).ok().map(|i| self.attrs.remove(i).1)
    }

    /// How many attributes.
    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// The attributes in name order.
    pub fn iter(&self) -> Iter<'_> {
        self.into_iter()
    }

    /// The names in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.attrs.iter().map(|(n, _)| n.as_str())
    }

    /// The values in name order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &AttributeValue> {
        self.attrs.iter().map(|(_, v)| v)
    }
}

impl std::ops::Index<&str> for Item {
    type Output = AttributeValue;
    /// # Panics
    /// When the item has no attribute `name` (as a map's index does).
    fn index(&self, name: &str) -> &AttributeValue {
        self.get(name)
            .unwrap_or_else(|| panic!("item has no attribute {name:?}"))
    }
}

/// An iterator over an item's attributes in name order.
pub type Iter<'a> = std::iter::Map<
    std::slice::Iter<'a, (AttrName, AttributeValue)>,
    fn(&'a (AttrName, AttributeValue)) -> (&'a str, &'a AttributeValue),
>;

impl<'a> IntoIterator for &'a Item {
    type Item = (&'a str, &'a AttributeValue);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        fn pair(entry: &(AttrName, AttributeValue)) -> (&str, &AttributeValue) {
            (entry.0.as_str(), &entry.1)
        }
        self.attrs
            .iter()
            .map(pair as fn(&'a (AttrName, AttributeValue)) -> _)
    }
}

impl<K: Into<AttrName>> FromIterator<(K, AttributeValue)> for Item {
    /// As inserting each in turn: of two attributes with one name, the later wins.
    fn from_iter<I: IntoIterator<Item = (K, AttributeValue)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut item = Item::with_capacity(iter.size_hint().0);
        for (name, value) in iter {
            item.insert(name, value);
        }
        item
    }
}

impl<K: Into<AttrName>, const N: usize> From<[(K, AttributeValue); N]> for Item {
    /// As collecting them; attributes already in name order (each name once) are taken as
    /// they are, in one allocation.
    fn from(attrs: [(K, AttributeValue); N]) -> Self {
        let attrs: Vec<(AttrName, AttributeValue)> =
            attrs.into_iter().map(|(k, v)| (k.into(), v)).collect();
        if attrs.windows(2).all(|w| w[0].0 < w[1].0) {
            Item { attrs }
        } else {
            attrs.into_iter().collect()
        }
    }
}

impl IntoIterator for Item {
    type Item = (AttrName, AttributeValue);
    type IntoIter = std::vec::IntoIter<(AttrName, AttributeValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.attrs.into_iter()
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attribute names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
                let mut item = Item::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((name, value)) = map.next_entry::<String, AttributeValue>()? {
                    item.insert(name, value);
                }
                Ok(item)
            }
        }
        deserializer.deserialize_map(ItemVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_string())
    }

    #[test]
    fn attributes_are_kept_in_name_order_and_the_later_of_two_wins() {
        let item = Item::from([
            ("value", s("3")),
            ("alpha", s("1")),
            ("value", s("4")),
            ("mid", s("2")),
        ]);
        assert_eq!(
            item.keys().collect::<Vec<_>>(),
            vec!["alpha", "mid", "value"]
        );
        assert_eq!(item.get("value"), Some(&s("4")));
        assert_eq!(item.get("nope"), None);
        let mut other = Item::new();
        other.insert("mid".to_string(), s("2"));
        other.insert("alpha", s("1"));
        assert_eq!(other.insert("value", s("3")), None);
        assert_eq!(other.insert("value", s("4")), Some(s("3")));
        assert_eq!(item, other, "the same attributes however they were built");
        assert_eq!(other.remove("mid"), Some(s("2")));
        assert_eq!((other.len(), other.contains_key("mid")), (2, false));
    }

    #[test]
    fn an_ordered_array_is_the_same_item_as_one_built_by_inserts() {
        let ordered = Item::from([("a", s("1")), ("b", s("2")), ("c", s("3"))]);
        let mut inserted = Item::new();
        for (name, value) in [("c", s("3")), ("a", s("1")), ("b", s("2"))] {
            inserted.insert(name, value);
        }
        assert_eq!(ordered, inserted);
        assert_eq!(ordered.get("b"), Some(&s("2")));
        // Equal neighbours are not "in order": the later still wins.
        let twice = Item::from([("a", s("1")), ("a", s("2"))]);
        assert_eq!((twice.len(), twice.get("a")), (1, Some(&s("2"))));
    }

    #[test]
    fn json_is_an_object_of_attribute_values() {
        let item = Item::from([("b", AttributeValue::N("1.5".into())), ("a", s("x"))]);
        let json = serde_json::to_string(&item).expect("serialise");
        assert_eq!(json, r#"{"a":{"S":"x"},"b":{"N":"1.5"}}"#);
        let back: Item = serde_json::from_str(r#"{"b":{"N":"1.5"},"a":{"S":"x"}}"#).expect("read");
        assert_eq!(back, item);
        assert!(serde_json::from_str::<Item>("[1]").is_err());
        assert_eq!(format!("{item:?}"), r#"{"a": S("x"), "b": N("1.5")}"#);
    }
}
