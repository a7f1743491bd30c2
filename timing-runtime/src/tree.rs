//! The call tree as it is recorded: each thread finds a call's node in a thread-local structure (a walk over
//! the few children of its caller's node), shares each new path once under a lock, and counts per node in a
//! table that reports read. Recursion reuses the node of the active call of the same name, so the tree is
//! bounded by the distinct call paths without repeats, however deep the recursion.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

use crate::slot::bump;
use crate::table::Table;

/// The node of calls with no timed caller.
pub(crate) const ROOT: u32 = 0;
/// No node: the thread's tree is full (16,384 paths); such calls keep their span statistics.
pub(crate) const NO_NODE: u32 = u32::MAX;
const MAX_NODES: usize = 16_384;

/// One node's counters, in ticks; only the owning thread writes them.
#[derive(Default)]
pub(crate) struct NodeCounters {
    count: AtomicU64,
    total: AtomicU64,
    self_ticks: AtomicU64,
}

impl NodeCounters {
    /// Counts one closed call: `total` is `None` for a recursive call, whose time the outer call holds.
    #[inline(always)]
    pub fn record(&self, counted: bool, total: Option<u64>, self_ticks: u64) {
        if counted {
            bump(&self.count, 1);
        }
        if let Some(total) = total {
            bump(&self.total, total);
        }
        bump(&self.self_ticks, self_ticks);
    }
}

/// What a thread shares of its tree.
pub(crate) struct SharedTree {
    /// `(parent, span name id)` of each node, by node id; index 0 is the root.
    paths: Mutex<Vec<(u32, u32)>>,
    counters: Table<NodeCounters>,
}

impl SharedTree {
    pub fn new() -> Self {
        SharedTree { paths: Mutex::new(vec![(ROOT, u32::MAX)]), counters: Table::new() }
    }

    #[inline(always)]
    pub fn counters(&self, node: u32) -> Option<&NodeCounters> {
        self.counters.get(node)
    }

    /// Zeroes the counters (for a new epoch); the paths stay, as the thread-local structure mirrors them.
    pub fn clear(&self) {
        for (_, counters) in self.counters.iter() {
            for counter in [&counters.count, &counters.total, &counters.self_ticks] {
                counter.store(0, Relaxed);
            }
        }
    }
}

#[derive(Clone, Copy)]
struct LocalNode {
    name: u32,
    first_child: u32,
    next_sibling: u32,
}

/// The thread-local mirror of the shared paths, for finding children without a lock.
pub(crate) struct LocalTree {
    nodes: Vec<LocalNode>,
}

impl LocalTree {
    pub const fn new() -> Self {
        LocalTree { nodes: Vec::new() }
    }

    /// The node for a call of `name` made from `parent`, made if it is the path's first call.
    #[inline(always)]
    pub fn child(&mut self, parent: u32, name: u32, shared: &SharedTree) -> u32 {
        let Some(parent_node) = self.nodes.get(parent as usize) else {
            return self.first_node(parent, name, shared);
        };
        let mut next = parent_node.first_child;
        while let Some(node) = self.nodes.get(next as usize) {
            if node.name == name {
                return next;
            }
            next = node.next_sibling;
        }
        self.add(parent, name, shared)
    }

    #[cold]
    #[inline(never)]
    fn first_node(&mut self, parent: u32, name: u32, shared: &SharedTree) -> u32 {
        if self.nodes.is_empty() && parent == ROOT {
            self.nodes.push(LocalNode { name: u32::MAX, first_child: NO_NODE, next_sibling: NO_NODE });
            return self.add(parent, name, shared);
        }
        NO_NODE
    }

    #[cold]
    #[inline(never)]
    fn add(&mut self, parent: u32, name: u32, shared: &SharedTree) -> u32 {
        if self.nodes.len() >= MAX_NODES {
            return NO_NODE;
        }
        let Ok(id) = u32::try_from(self.nodes.len()) else { return NO_NODE };
        let Some(parent_node) = self.nodes.get_mut(parent as usize) else { return NO_NODE };
        let next_sibling = std::mem::replace(&mut parent_node.first_child, id);
        self.nodes.push(LocalNode { name, first_child: NO_NODE, next_sibling });
        shared.paths.lock().push((parent, name));
        id
    }
}

/// One node's merged numbers, in ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeTotals {
    pub count: u64,
    pub total: u64,
    pub self_ticks: u64,
}

impl NodeTotals {
    fn merge(&mut self, other: NodeTotals) {
        self.count = self.count.saturating_add(other.count);
        self.total = self.total.saturating_add(other.total);
        self.self_ticks = self.self_ticks.saturating_add(other.self_ticks);
    }
}

/// Call trees of several threads merged by path; a node's parent always comes before it.
#[derive(Clone, Debug, Default)]
pub(crate) struct MergedTree {
    /// `(parent, span name id)` by node id; node 0 is the root.
    pub paths: Vec<(u32, u32)>,
    pub totals: Vec<NodeTotals>,
    index: HashMap<(u32, u32), u32>,
}

impl MergedTree {
    fn node(&mut self, parent: u32, name: u32) -> u32 {
        if self.paths.is_empty() {
            self.paths.push((ROOT, u32::MAX));
            self.totals.push(NodeTotals::default());
        }
        let next = u32::try_from(self.paths.len()).unwrap_or(NO_NODE);
        let id = *self.index.entry((parent, name)).or_insert(next);
        if id == next {
            self.paths.push((parent, name));
            self.totals.push(NodeTotals::default());
        }
        id
    }

    /// Adds `paths` and their `totals` (of one thread, or another merged tree).
    fn add(&mut self, paths: &[(u32, u32)], totals: impl Fn(usize) -> NodeTotals) {
        let mut mine = vec![ROOT; paths.len()];
        for (id, (parent, name)) in paths.iter().enumerate().skip(1) {
            let parent = mine.get(*parent as usize).copied().unwrap_or(ROOT);
            let node = self.node(parent, *name);
            mine[id] = node;
            if let Some(sum) = self.totals.get_mut(node as usize) {
                sum.merge(totals(id));
            }
        }
    }

    pub fn add_thread(&mut self, shared: &SharedTree) {
        let paths = shared.paths.lock().clone();
        self.add(&paths, |id| {
            let read = |counter: &AtomicU64| counter.load(Relaxed);
            u32::try_from(id).ok().and_then(|id| shared.counters(id)).map_or_else(NodeTotals::default, |counters| {
                NodeTotals {
                    count: read(&counters.count),
                    total: read(&counters.total),
                    self_ticks: read(&counters.self_ticks),
                }
            })
        });
    }

    pub fn merge(&mut self, other: &MergedTree) {
        self.add(&other.paths, |id| other.totals.get(id).copied().unwrap_or_default());
    }
}
