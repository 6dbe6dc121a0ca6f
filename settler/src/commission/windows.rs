//! Unique-click windows: when each visitor's last counted unique click for a member and offer
//! happened.
//!
//! A family's ledger holds one entry per visitor per member it clicked — the most numerous
//! entries of a ledger. In memory they are nested by offer and member, so a click looks its
//! window up by three hashed strings without building a key, and a changed entry records one
//! visitor id. Saved, they are the flat map `(offer, member, visitor) → time` a ledger always
//! had, so saved ledgers read the same.

use foldhash::{HashMap, HashSet};

use model::ids::{MemberId, OfferId, VisitorId};
use model::time::Timestamp;
use serde::de::{MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::tracked::Change;

type Nested<T> = HashMap<OfferId, HashMap<MemberId, T>>;

/// A window's key as saved.
pub type WindowKey = (OfferId, MemberId, VisitorId);

#[derive(Clone, Debug, Default)]
pub struct ClickWindows {
    windows: Nested<HashMap<VisitorId, Timestamp>>,
    len: usize,
    /// The visitors whose window changed since the last save.
    changed: Nested<HashSet<VisitorId>>,
    /// The sets of the last save, handed back empty at the next: neither set grows again
    /// from nothing at every save.
    saved: Nested<HashSet<VisitorId>>,
}

/// Equal when the windows are: what changed since a save is not part of the value.
impl PartialEq for ClickWindows {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.windows == other.windows
    }
}

/// The innermost map of `offer` and `member`, made if missing.
fn entry<'a, T: Default>(nested: &'a mut Nested<T>, offer: &OfferId, member: &MemberId) -> &'a mut T {
    nested.entry(offer.clone()).or_default().entry(member.clone()).or_default()
}

impl ClickWindows {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, offer: &OfferId, member: &MemberId, visitor: &VisitorId) -> Option<Timestamp> {
        self.windows.get(offer)?.get(member)?.get(visitor).copied()
    }

    pub fn insert(&mut self, offer: &OfferId, member: &MemberId, visitor: &VisitorId, at: Timestamp) {
        let visitors = match self.windows.get_mut(offer).and_then(|members| members.get_mut(member)) {
            Some(visitors) => visitors,
            None => entry(&mut self.windows, offer, member),
        };
        if visitors.insert(visitor.clone(), at).is_none() {
            self.len += 1;
        }
        self.mark(offer, member, visitor);
    }

    fn mark(&mut self, offer: &OfferId, member: &MemberId, visitor: &VisitorId) {
        let changed = match self.changed.get_mut(offer).and_then(|members| members.get_mut(member)) {
            Some(changed) => changed,
            None => entry(&mut self.changed, offer, member),
        };
        changed.insert(visitor.clone());
    }

    /// The newest time a window was counted at.
    pub fn newest(&self) -> Option<Timestamp> {
        self.windows.values().flat_map(HashMap::values).flat_map(HashMap::values).max().copied()
    }

    /// Keep the windows for which `keep(offer, counted at)` holds; true if any went.
    pub fn retain(&mut self, mut keep: impl FnMut(&OfferId, Timestamp) -> bool) -> bool {
        let before = self.len;
        let changed = &mut self.changed;
        for (offer, members) in &mut self.windows {
            for (member, visitors) in members.iter_mut() {
                visitors.retain(|visitor, at| {
                    let kept = keep(offer, *at);
                    if !kept {
                        match changed.get_mut(offer).and_then(|members| members.get_mut(member)) {
                            Some(changed) => changed.insert(visitor.clone()),
                            None => entry(changed, offer, member).insert(visitor.clone()),
                        };
                    }
                    kept
                });
            }
            members.retain(|_, visitors| !visitors.is_empty());
        }
        self.windows.retain(|_, members| !members.is_empty());
        self.len = self.windows.values().flat_map(HashMap::values).map(HashMap::len).sum();
        self.len < before
    }

    /// What changed since the last call, to save: each changed window's time now (`None`:
    /// forgotten). Serializes as a list of `((offer, member, visitor), time)`.
    pub fn take_changes(&mut self) -> WindowChanges<'_> {
        for members in self.saved.values_mut() {
            members.values_mut().for_each(HashSet::clear);
        }
        std::mem::swap(&mut self.changed, &mut self.saved);
        WindowChanges { changed: &self.saved, windows: &self.windows }
    }

    /// Apply changes saved from windows equal to these.
    pub fn apply_changes(&mut self, changes: Vec<Change<WindowKey, Timestamp>>) {
        for ((offer, member, visitor), at) in changes {
            match at {
                Some(at) => {
                    let visitors = entry(&mut self.windows, &offer, &member);
                    if visitors.insert(visitor, at).is_none() {
                        self.len += 1;
                    }
                }
                None => {
                    let removed = self
                        .windows
                        .get_mut(&offer)
                        .and_then(|members| members.get_mut(&member))
                        .and_then(|visitors| visitors.remove(&visitor));
                    if removed.is_some() {
                        self.len -= 1;
                    }
                }
            }
        }
        for members in self.windows.values_mut() {
            members.retain(|_, visitors| !visitors.is_empty());
        }
        self.windows.retain(|_, members| !members.is_empty());
    }
}

/// The changes taken from [`ClickWindows`], borrowed to encode.
#[derive(Debug)]
pub struct WindowChanges<'a> {
    changed: &'a Nested<HashSet<VisitorId>>,
    windows: &'a Nested<HashMap<VisitorId, Timestamp>>,
}

impl Serialize for WindowChanges<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let count = self.changed.values().flat_map(HashMap::values).map(HashSet::len).sum();
        let mut seq = serializer.serialize_seq(Some(count))?;
        for (offer, members) in self.changed {
            for (member, visitors) in members {
                let now = self.windows.get(offer).and_then(|members| members.get(member));
                for visitor in visitors {
                    let at = now.and_then(|visitors| visitors.get(visitor));
                    seq.serialize_element(&((offer, member, visitor), at))?;
                }
            }
        }
        seq.end()
    }
}

impl Serialize for ClickWindows {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len))?;
        for (offer, members) in &self.windows {
            for (member, visitors) in members {
                for (visitor, at) in visitors {
                    map.serialize_entry(&(offer, member, visitor), at)?;
                }
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ClickWindows {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Flat;
        impl<'de> Visitor<'de> for Flat {
            type Value = ClickWindows;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of (offer, member, visitor) to a time")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClickWindows, A::Error> {
                let mut windows = ClickWindows::default();
                while let Some(((offer, member, visitor), at)) = map.next_entry::<WindowKey, Timestamp>()? {
                    if entry(&mut windows.windows, &offer, &member).insert(visitor, at).is_none() {
                        windows.len += 1;
                    }
                }
                Ok(windows)
            }
        }
        deserializer.deserialize_map(Flat)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn ids(offer: &str, member: &str, visitor: &str) -> (OfferId, MemberId, VisitorId) {
        (OfferId::new(offer).unwrap(), MemberId::new(member).unwrap(), VisitorId::new(visitor).unwrap())
    }

    #[test]
    fn saved_as_the_flat_map_a_ledger_always_had() {
        let (offer, member, visitor) = ids("store", "jane", "v1");
        let mut windows = ClickWindows::default();
        windows.insert(&offer, &member, &visitor, Timestamp::from_millis(5));
        let flat: BTreeMap<WindowKey, Timestamp> = [(ids("store", "jane", "v1"), Timestamp::from_millis(5))].into();
        let saved = rmp_serde::to_vec_named(&windows).unwrap();
        assert_eq!(saved, rmp_serde::to_vec_named(&flat).unwrap());
        let back: ClickWindows = rmp_serde::from_slice(&saved).unwrap();
        assert_eq!(back, windows);
        assert_eq!(back.get(&offer, &member, &visitor), Some(Timestamp::from_millis(5)));
    }

    #[test]
    fn changes_replayed_on_the_old_windows_give_the_new_ones() {
        let (offer, jane, v1) = ids("store", "jane", "v1");
        let (_, tom, v2) = ids("store", "tom", "v2");
        let mut windows = ClickWindows::default();
        windows.insert(&offer, &jane, &v1, Timestamp::from_millis(1));
        windows.insert(&offer, &tom, &v2, Timestamp::from_millis(2));
        let _ = rmp_serde::to_vec_named(&windows.take_changes()).unwrap();
        let before = windows.clone();
        windows.insert(&offer, &jane, &v2, Timestamp::from_millis(30));
        windows.insert(&offer, &jane, &v1, Timestamp::from_millis(40));
        assert!(windows.retain(|_, at| at > Timestamp::from_millis(2)), "tom's only window went");
        assert_eq!(windows.len, 2);
        let saved = rmp_serde::to_vec_named(&windows.take_changes()).unwrap();
        let changes: Vec<Change<WindowKey, Timestamp>> = rmp_serde::from_slice(&saved).unwrap();
        assert_eq!(changes.len(), 3, "jane's two windows and tom's forgotten one: {changes:?}");
        let mut replayed = before;
        replayed.apply_changes(changes);
        assert_eq!(replayed, windows);
        assert_eq!(replayed.get(&offer, &tom, &v2), None);
        assert_eq!(replayed.newest(), Some(Timestamp::from_millis(40)));
        assert!(
            rmp_serde::from_slice::<Vec<Change<WindowKey, Timestamp>>>(
                &rmp_serde::to_vec_named(&windows.take_changes()).unwrap()
            )
            .unwrap()
            .is_empty()
        );
    }
}
