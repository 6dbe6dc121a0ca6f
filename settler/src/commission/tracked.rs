//! A map that remembers which of its keys changed, so the ledger is saved as what changed
//! since the last save instead of whole (`pipeline::StageState`).
//!
//! Reads go through `Deref` to the map; every way of changing it goes through a method here,
//! which records the key. It serializes as the plain map, so a saved ledger reads the same
//! whether or not its maps are tracked.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug)]
pub struct Tracked<K: Ord, V> {
    map: BTreeMap<K, V>,
    /// A hash set: recording a change is on every write path, and comparing string keys down
    /// a second B-tree cost more than hashing them once. Emptied, not replaced, at a save, so
    /// it does not grow again from nothing between saves.
    changed: HashSet<K>,
}

/// A key's value after the changes: `None` when it was removed.
pub type Change<K, V> = (K, Option<V>);

impl<K: Ord, V> Default for Tracked<K, V> {
    fn default() -> Self {
        Self { map: BTreeMap::new(), changed: HashSet::new() }
    }
}

/// Equal when the maps are: what changed since a save is not part of the value.
impl<K: Ord, V: PartialEq> PartialEq for Tracked<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<K: Ord, V> Deref for Tracked<K, V> {
    type Target = BTreeMap<K, V>;

    fn deref(&self) -> &BTreeMap<K, V> {
        &self.map
    }
}

impl<K: Ord + Hash + Clone, V> Tracked<K, V> {
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.changed.insert(key.clone());
        self.map.insert(key, value)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let removed = self.map.remove(key);
        if removed.is_some() {
            self.changed.insert(key.clone());
        }
        removed
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let value = self.map.get_mut(key)?;
        self.changed.insert(key.clone());
        Some(value)
    }

    pub fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        self.changed.insert(key.clone());
        self.map.entry(key).or_default()
    }

    /// What changed since the last call, as the changed keys' values now (in no particular
    /// order: each key once).
    pub fn take_changes(&mut self) -> Vec<Change<K, V>>
    where
        V: Clone,
    {
        self.take_changes_borrowed().into_iter().map(|(key, value)| (key, value.cloned())).collect()
    }

    /// What changed since the last call, as the changed keys' values now, borrowed (to encode
    /// without copying).
    pub fn take_changes_borrowed(&mut self) -> Vec<(K, Option<&V>)> {
        let map = &self.map;
        self.changed
            .drain()
            .map(|key| {
                let value = map.get(&key);
                (key, value)
            })
            .collect()
    }

    /// Apply changes taken from a map with the same contents as this one.
    pub fn apply_changes(&mut self, changes: Vec<Change<K, V>>) {
        for (key, value) in changes {
            match value {
                Some(value) => self.map.insert(key, value),
                None => self.map.remove(&key),
            };
        }
    }

    /// What changed since the last call, for values that record their own changes: the
    /// changed keys with what `take` says changed in each.
    pub fn take_nested_changes<C>(&mut self, mut take: impl FnMut(&mut V) -> C) -> Vec<Change<K, C>> {
        let map = &mut self.map;
        self.changed.drain().map(|key| (key.clone(), map.get_mut(&key).map(&mut take))).collect()
    }

    /// Apply changes taken by [`Tracked::take_nested_changes`].
    pub fn apply_nested_changes<C>(&mut self, changes: Vec<Change<K, C>>, mut apply: impl FnMut(&mut V, C))
    where
        V: Default,
    {
        for (key, change) in changes {
            match change {
                Some(change) => apply(self.map.entry(key).or_default(), change),
                None => {
                    self.map.remove(&key);
                }
            }
        }
    }
}

impl<K: Ord + Serialize, V: Serialize> Serialize for Tracked<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(serializer)
    }
}

impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Tracked<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self { map: BTreeMap::deserialize(deserializer)?, changed: HashSet::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_replayed_on_the_old_map_give_the_new_one() {
        let mut map: Tracked<u32, String> = Tracked::default();
        map.insert(1, "a".into());
        map.insert(2, "b".into());
        map.take_changes();
        let before = map.clone();
        map.insert(3, "c".into());
        map.remove(&1);
        if let Some(value) = map.get_mut(&2) {
            value.push('!');
        }
        map.remove(&3);
        *map.get_or_default(4) += "d";
        let mut changes = map.take_changes();
        changes.sort();
        assert_eq!(changes, vec![(1, None), (2, Some("b!".to_string())), (3, None), (4, Some("d".to_string()))]);
        let mut replayed = before;
        replayed.apply_changes(changes);
        assert_eq!(replayed, map);
        assert!(map.take_changes().is_empty());
    }

    #[test]
    fn it_serializes_as_the_plain_map() {
        let mut map: Tracked<u32, u32> = Tracked::default();
        map.insert(1, 2);
        let plain: BTreeMap<u32, u32> = [(1, 2)].into();
        assert_eq!(rmp_serde::to_vec_named(&map).unwrap(), rmp_serde::to_vec_named(&plain).unwrap());
        let back: Tracked<u32, u32> = rmp_serde::from_slice(&rmp_serde::to_vec_named(&plain).unwrap()).unwrap();
        assert_eq!(back, map);
    }
}
