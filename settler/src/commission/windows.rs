//! Unique-click windows: when each visitor's last counted unique click for a member and offer
//! happened.
//!
//! A family's ledger holds one entry per visitor per member it clicked — the most numerous
//! entries of a ledger. In memory they are nested by offer and member, so a click finds its
//! window by three hashed strings without building a key. A window records that it changed
//! since the last save on itself, and its visitor goes on a list once: counting a click hashes
//! the visitor once (twice when it is new), not again into a set of changes. Saved, the
//! windows are the flat map `(offer, member, visitor) → time` a ledger always had, so saved
//! ledgers read the same.

use std::collections::HashMap;

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
    members: Nested<MemberWindows>,
    len: usize,
}

/// One member's windows in one offer.
#[derive(Clone, Debug, Default)]
struct MemberWindows {
    windows: HashMap<VisitorId, Window>,
    /// Visitors whose window changed since the last save: each once, except one forgotten
    /// and then counted again. Taken, such a visitor's window is saved once with its time now;
    /// forgotten once more before the save, it is saved as forgotten twice, which replays the
    /// same.
    changed: Vec<VisitorId>,
    /// The changes taken at the last save, with each window's time then (`None`: forgotten).
    taken: Vec<(VisitorId, Option<Timestamp>)>,
}

impl MemberWindows {
    fn is_unused(&self) -> bool {
        self.windows.is_empty() && self.changed.is_empty() && self.taken.is_empty()
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    at: Timestamp,
    /// On its member's `changed` list.
    listed: bool,
}

/// Equal when the windows are: what changed since a save is not part of the value.
impl PartialEq for ClickWindows {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self.members.iter().all(|(offer, members)| {
                members.iter().all(|(member, visitors)| {
                    visitors
                        .windows
                        .iter()
                        .all(|(visitor, window)| other.get(offer, member, visitor) == Some(window.at))
                })
            })
    }
}

/// The windows of `offer` and `member`, made if missing.
fn entry<'a>(nested: &'a mut Nested<MemberWindows>, offer: &OfferId, member: &MemberId) -> &'a mut MemberWindows {
    nested.entry(offer.clone()).or_default().entry(member.clone()).or_default()
}

impl ClickWindows {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, offer: &OfferId, member: &MemberId, visitor: &VisitorId) -> Option<Timestamp> {
        self.members.get(offer)?.get(member)?.windows.get(visitor).map(|window| window.at)
    }

    /// Count `visitor`'s click at `at` for `member` and `offer`, unless `open(counted at)`
    /// says the window of the last counted one is still open; true if counted.
    pub fn count(
        &mut self,
        offer: &OfferId,
        member: &MemberId,
        visitor: &VisitorId,
        at: Timestamp,
        open: impl FnOnce(Timestamp) -> bool,
    ) -> bool {
        let visitors = match self.members.get_mut(offer).and_then(|members| members.get_mut(member)) {
            Some(visitors) => visitors,
            None => entry(&mut self.members, offer, member),
        };
        match visitors.windows.get_mut(visitor) {
            Some(window) => {
                if open(window.at) {
                    return false;
                }
                window.at = at;
                if !window.listed {
                    window.listed = true;
                    visitors.changed.push(visitor.clone());
                }
            }
            None => {
                visitors.windows.insert(visitor.clone(), Window { at, listed: true });
                visitors.changed.push(visitor.clone());
                self.len += 1;
            }
        }
        true
    }

    /// The newest time a window was counted at.
    pub fn newest(&self) -> Option<Timestamp> {
        self.members
            .values()
            .flat_map(HashMap::values)
            .flat_map(|visitors| visitors.windows.values())
            .map(|window| window.at)
            .max()
    }

    /// Keep the windows for which `keep(offer, counted at)` holds; true if any went.
    pub fn retain(&mut self, mut keep: impl FnMut(&OfferId, Timestamp) -> bool) -> bool {
        let before = self.len;
        for (offer, members) in &mut self.members {
            for visitors in members.values_mut() {
                let MemberWindows { windows, changed, .. } = visitors;
                windows.retain(|visitor, window| {
                    let kept = keep(offer, window.at);
                    if !kept && !window.listed {
                        changed.push(visitor.clone());
                    }
                    kept
                });
            }
            members.retain(|_, visitors| !visitors.is_unused());
        }
        self.members.retain(|_, members| !members.is_empty());
        self.len = self.members.values().flat_map(HashMap::values).map(|visitors| visitors.windows.len()).sum();
        self.len < before
    }

    /// What changed since the last call, to save: each changed window's time now (`None`:
    /// forgotten). Serializes as a list of `((offer, member, visitor), time)`.
    pub fn take_changes(&mut self) -> WindowChanges<'_> {
        for visitors in self.members.values_mut().flat_map(HashMap::values_mut) {
            let MemberWindows { windows, changed, taken } = visitors;
            taken.clear();
            for visitor in changed.drain(..) {
                match windows.get_mut(&visitor) {
                    Some(window) if window.listed => {
                        window.listed = false;
                        taken.push((visitor, Some(window.at)));
                    }
                    // Listed again after it was forgotten: taken already.
                    Some(_) => {}
                    None => taken.push((visitor, None)),
                }
            }
        }
        WindowChanges { members: &self.members }
    }

    /// Apply changes saved from windows equal to these.
    pub fn apply_changes(&mut self, changes: Vec<Change<WindowKey, Timestamp>>) {
        for ((offer, member, visitor), at) in changes {
            match at {
                Some(at) => {
                    let visitors = entry(&mut self.members, &offer, &member);
                    if visitors.windows.insert(visitor, Window { at, listed: false }).is_none() {
                        self.len += 1;
                    }
                }
                None => {
                    let removed = self
                        .members
                        .get_mut(&offer)
                        .and_then(|members| members.get_mut(&member))
                        .and_then(|visitors| visitors.windows.remove(&visitor));
                    if removed.is_some() {
                        self.len -= 1;
                    }
                }
            }
        }
        for members in self.members.values_mut() {
            members.retain(|_, visitors| !visitors.is_unused());
        }
        self.members.retain(|_, members| !members.is_empty());
    }
}

/// The changes taken from [`ClickWindows`], borrowed to encode.
#[derive(Debug)]
pub struct WindowChanges<'a> {
    members: &'a Nested<MemberWindows>,
}

impl Serialize for WindowChanges<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let count = self.members.values().flat_map(HashMap::values).map(|visitors| visitors.taken.len()).sum();
        let mut seq = serializer.serialize_seq(Some(count))?;
        for (offer, members) in self.members {
            for (member, visitors) in members {
                for (visitor, at) in &visitors.taken {
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
        for (offer, members) in &self.members {
            for (member, visitors) in members {
                for (visitor, window) in &visitors.windows {
                    map.serialize_entry(&(offer, member, visitor), &window.at)?;
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
                    let visitors = entry(&mut windows.members, &offer, &member);
                    if visitors.windows.insert(visitor, Window { at, listed: false }).is_none() {
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
        assert!(windows.count(&offer, &member, &visitor, Timestamp::from_millis(5), |_| false));
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
        assert!(windows.count(&offer, &jane, &v1, Timestamp::from_millis(1), |_| false));
        assert!(windows.count(&offer, &tom, &v2, Timestamp::from_millis(2), |_| false));
        let _ = rmp_serde::to_vec_named(&windows.take_changes()).unwrap();
        let before = windows.clone();
        assert!(windows.count(&offer, &jane, &v2, Timestamp::from_millis(30), |_| false));
        assert!(windows.count(&offer, &jane, &v1, Timestamp::from_millis(40), |_| false));
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

    #[test]
    fn a_click_inside_the_open_window_is_not_counted_and_changes_nothing() {
        let (offer, jane, v1) = ids("store", "jane", "v1");
        let mut windows = ClickWindows::default();
        assert!(windows.count(&offer, &jane, &v1, Timestamp::from_millis(10), |_| false));
        let _ = rmp_serde::to_vec_named(&windows.take_changes()).unwrap();
        let open =
            |counted: Timestamp| Timestamp::from_millis(5_000) < counted.saturating_add(model::time::Span::seconds(10));
        assert!(!windows.count(&offer, &jane, &v1, Timestamp::from_millis(5_000), open));
        assert_eq!(windows.get(&offer, &jane, &v1), Some(Timestamp::from_millis(10)));
        let saved = rmp_serde::to_vec_named(&windows.take_changes()).unwrap();
        assert!(rmp_serde::from_slice::<Vec<Change<WindowKey, Timestamp>>>(&saved).unwrap().is_empty());
    }

    #[test]
    fn a_window_forgotten_and_counted_again_before_a_save_is_saved_once_with_its_new_time() {
        let (offer, jane, v1) = ids("store", "jane", "v1");
        let mut windows = ClickWindows::default();
        assert!(windows.count(&offer, &jane, &v1, Timestamp::from_millis(1), |_| false));
        let _ = rmp_serde::to_vec_named(&windows.take_changes()).unwrap();
        let before = windows.clone();
        assert!(windows.retain(|_, at| at > Timestamp::from_millis(1)));
        assert!(windows.is_empty());
        assert!(windows.count(&offer, &jane, &v1, Timestamp::from_millis(50), |_| false));
        let saved = rmp_serde::to_vec_named(&windows.take_changes()).unwrap();
        let changes: Vec<Change<WindowKey, Timestamp>> = rmp_serde::from_slice(&saved).unwrap();
        assert_eq!(changes, vec![(ids("store", "jane", "v1"), Some(Timestamp::from_millis(50)))]);
        let mut replayed = before;
        replayed.apply_changes(changes);
        assert_eq!(replayed, windows);
    }
}
