//! Which shards of a stream may be read, and in which order: pure functions over a listing.
//!
//! All events of one account live in one partition, and a partition's history is a lineage of shards
//! (a parent is closed when it splits or rolls over, its children continue it). Reading a child
//! before its parent is fully projected would hand the projector sequence N+1 before N: a gap, which
//! it retries and then dead-letters. So a child waits until its parent is finished, or gone.

use std::collections::{HashMap, HashSet};

/// One shard as DescribeStream lists it: only what the ordering needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedShard {
    pub shard_id: String,
    /// The shard this one continues, if any. It may be absent from the listing: shards expire 24
    /// hours after they close.
    pub parent_shard_id: Option<String>,
    /// The listing gave the shard an ending sequence number: no record will be added to it.
    pub closed: bool,
}

#[cfg(test)]
impl ListedShard {
    /// An open shard.
    pub fn new(shard_id: impl Into<String>, parent_shard_id: Option<&str>) -> Self {
        Self {
            shard_id: shard_id.into(),
            parent_shard_id: parent_shard_id.map(str::to_owned),
            closed: false,
        }
    }
}

/// The listing ordered so that every shard comes after its parent (and so after all its listed
/// ancestors). Shards at the same depth keep their listing order, so the result is deterministic.
///
/// The parent links of a real stream form a forest; a cycle cannot happen, but the walk up is
/// bounded by the listing's length anyway, so malformed input costs at most O(n²), never a hang.
pub fn order_parents_first(listing: &[ListedShard]) -> Vec<ListedShard> {
    let parents: HashMap<&str, Option<&str>> = listing
        .iter()
        .map(|shard| (shard.shard_id.as_str(), shard.parent_shard_id.as_deref()))
        .collect();
    let depth_of = |shard: &ListedShard| {
        let mut depth = 0_usize;
        let mut parent = shard.parent_shard_id.as_deref();
        while let Some(listed_parent) = parent.and_then(|id| parents.get(id)) {
            depth += 1;
            if depth >= listing.len() {
                break;
            }
            parent = *listed_parent;
        }
        depth
    };
    let mut ordered: Vec<(usize, usize, &ListedShard)> = listing
        .iter()
        .enumerate()
        .map(|(index, shard)| (depth_of(shard), index, shard))
        .collect();
    ordered.sort_unstable_by_key(|&(depth, index, _)| (depth, index));
    ordered
        .into_iter()
        .map(|(_, _, shard)| shard.clone())
        .collect()
}

/// Whether `shard` may be read now: it is not finished itself, and its parent is either absent from
/// the listing (it expired, so nothing of it can be read any more) or finished.
pub fn is_readable(
    shard: &ListedShard,
    listed: &HashSet<&str>,
    finished: &HashSet<String>,
) -> bool {
    if finished.contains(&shard.shard_id) {
        return false;
    }
    match shard.parent_shard_id.as_deref() {
        None => true,
        Some(parent) => !listed.contains(parent) || finished.contains(parent),
    }
}

#[cfg(test)]
mod tests {
    //! The lineage rules, on listings shaped like the ones DynamoDB returns.

    use super::*;

    fn ids(shards: &[ListedShard]) -> Vec<&str> {
        shards.iter().map(|s| s.shard_id.as_str()).collect()
    }

    fn listed(shards: &[ListedShard]) -> HashSet<&str> {
        shards.iter().map(|s| s.shard_id.as_str()).collect()
    }

    fn finished(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|&id| id.to_owned()).collect()
    }

    #[test]
    fn children_come_after_their_parents_whatever_the_listing_order() {
        // A split: root -> (left, right), and left rolled over into left-2.
        let listing = vec![
            ListedShard::new("left-2", Some("left")),
            ListedShard::new("right", Some("root")),
            ListedShard::new("left", Some("root")),
            ListedShard::new("root", None),
        ];
        let ordered = order_parents_first(&listing);
        assert_eq!(ids(&ordered), vec!["root", "right", "left", "left-2"]);
    }

    #[test]
    fn a_shard_whose_parent_expired_counts_as_a_root() {
        let listing = vec![
            ListedShard::new("child", Some("expired-parent")),
            ListedShard::new("grandchild", Some("child")),
        ];
        let ordered = order_parents_first(&listing);
        assert_eq!(ids(&ordered), vec!["child", "grandchild"]);
        assert!(is_readable(&ordered[0], &listed(&listing), &finished(&[])));
    }

    #[test]
    fn equal_depths_keep_the_listing_order() {
        let listing = vec![
            ListedShard::new("b", None),
            ListedShard::new("a", None),
            ListedShard::new("c", None),
        ];
        assert_eq!(ids(&order_parents_first(&listing)), vec!["b", "a", "c"]);
    }

    #[test]
    fn a_malformed_cycle_terminates() {
        let listing = vec![
            ListedShard::new("x", Some("y")),
            ListedShard::new("y", Some("x")),
        ];
        assert_eq!(order_parents_first(&listing).len(), 2);
        // Neither can ever be read: each waits for the other. Real listings have no cycles.
        assert!(!is_readable(&listing[0], &listed(&listing), &finished(&[])));
    }

    #[test]
    fn a_child_waits_until_its_listed_parent_is_finished() {
        let listing = vec![
            ListedShard::new("parent", None),
            ListedShard::new("child", Some("parent")),
        ];
        let listed = listed(&listing);
        assert!(is_readable(&listing[0], &listed, &finished(&[])));
        assert!(!is_readable(&listing[1], &listed, &finished(&[])));
        assert!(is_readable(&listing[1], &listed, &finished(&["parent"])));
    }

    #[test]
    fn a_finished_shard_is_never_read_again() {
        let listing = vec![ListedShard::new("done", None)];
        assert!(!is_readable(
            &listing[0],
            &listed(&listing),
            &finished(&["done"])
        ));
    }

    #[test]
    fn an_empty_listing_orders_to_nothing() {
        assert!(order_parents_first(&[]).is_empty());
    }
}
