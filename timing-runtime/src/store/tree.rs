//! The call tree as it is recorded. Each thread finds a call's edge (its name called from its caller's
//! node) in a thread-local structure by walking the few edges out of the caller's node; a new node is
//! shared once, under a lock, with its counters. A call of a name already on the path is an edge back to
//! that name's node, whose counters it shares (its time is inside the outer call's already), so the tree is
//! bounded by the distinct call paths without repeats, however deep the recursion.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::store::counters::{self, NodeCounters, Totals, UNUSED};

/// The local id of the node above every top-level call.
pub(crate) const ROOT: u32 = 0;
/// No node: granularity below `Detailed`, or the thread's tree is full.
pub(crate) const NO_NODE: u32 = u32::MAX;
const MAX_EDGES: usize = 16_384;

/// A node as shared with reports, by the local ids of the thread's tree.
struct SharedNode {
    id: u32,
    parent: u32,
    name: u32,
    counters: &'static NodeCounters,
}

/// What a thread shares of its tree: its nodes in the order they were made, the root first.
pub(crate) struct SharedTree {
    nodes: Mutex<Vec<SharedNode>>,
}

impl SharedTree {
    pub fn new() -> Self {
        let root = SharedNode { id: ROOT, parent: ROOT, name: u32::MAX, counters: &UNUSED };
        SharedTree { nodes: Mutex::new(vec![root]) }
    }

    fn add(&self, node: SharedNode) {
        self.nodes.lock().push(node);
    }

    /// Zeroes every node's counters, for a new epoch; the paths stay, as the local tree mirrors them.
    pub fn clear(&self) {
        for node in self.nodes.lock().iter().skip(1) {
            node.counters.clear();
        }
    }

    /// `(parent, name, totals)` of each node by its index here, parents first.
    pub fn read(&self) -> Vec<(u32, u32, Totals)> {
        let nodes: Vec<(u32, u32, u32, &'static NodeCounters)> =
            self.nodes.lock().iter().map(|node| (node.id, node.parent, node.name, node.counters)).collect();
        // Local ids grow with the index, so a parent's index is found by binary search.
        let index = |id: u32| u32::try_from(nodes.partition_point(|node| node.0 < id)).unwrap_or(ROOT);
        nodes.iter().map(|(_, parent, name, counters)| (index(*parent), *name, counters.read())).collect()
    }
}

impl Drop for SharedTree {
    fn drop(&mut self) {
        counters::give_back(self.nodes.get_mut().drain(..).map(|node| node.counters));
    }
}

struct LocalEdge {
    name: u32,
    /// The node it leaves.
    parent: u32,
    first_child: u32,
    next_sibling: u32,
    /// The node it enters: itself, or the node of its name on its path.
    target: u32,
    /// The target's counters.
    counters: &'static NodeCounters,
}

/// The thread-local mirror of the shared tree, for finding an edge without a lock.
pub(crate) struct LocalTree {
    edges: Vec<LocalEdge>,
}

impl LocalTree {
    pub const fn new() -> Self {
        LocalTree { edges: Vec::new() }
    }

    /// The node a call of `name` made from node `parent` enters, and its counters; `NO_NODE` when the tree is
    /// full.
    pub fn child(&mut self, parent: u32, name: u32, shared: &SharedTree) -> (u32, &'static NodeCounters) {
        if let Some(parent_edge) = self.edges.get(parent as usize) {
            let mut next = parent_edge.first_child;
            while let Some(edge) = self.edges.get(next as usize) {
                if edge.name == name {
                    return (edge.target, edge.counters);
                }
                next = edge.next_sibling;
            }
        }
        self.add(parent, name, shared)
    }

    #[cold]
    #[inline(never)]
    fn add(&mut self, parent: u32, name: u32, shared: &SharedTree) -> (u32, &'static NodeCounters) {
        if self.edges.is_empty() {
            self.edges.push(LocalEdge {
                name: u32::MAX,
                parent: ROOT,
                first_child: NO_NODE,
                next_sibling: NO_NODE,
                target: ROOT,
                counters: &UNUSED,
            });
        }
        let (Some(_), Ok(id)) = (self.edges.get(parent as usize), u32::try_from(self.edges.len())) else {
            return (NO_NODE, &UNUSED);
        };
        if self.edges.len() >= MAX_EDGES {
            return (NO_NODE, &UNUSED);
        }
        let (target, counters) = match self.node_on_path(parent, name) {
            Some(node) => (node, self.edges[node as usize].counters),
            None => {
                let counters = counters::take();
                shared.add(SharedNode { id, parent, name, counters });
                (id, counters)
            }
        };
        let next_sibling = std::mem::replace(&mut self.edges[parent as usize].first_child, id);
        self.edges.push(LocalEdge { name, parent, first_child: NO_NODE, next_sibling, target, counters });
        (target, counters)
    }

    /// The node of `name` on the path from the root to `node`, if any.
    fn node_on_path(&self, mut node: u32, name: u32) -> Option<u32> {
        while node != ROOT {
            let edge = self.edges.get(node as usize)?;
            if edge.name == name {
                return Some(node);
            }
            node = edge.parent;
        }
        None
    }
}

/// Call trees of several threads merged by path; a node's parent always comes before it.
#[derive(Clone, Debug, Default)]
pub(crate) struct MergedTree {
    /// `(parent, span name id)` by node id; node 0 is the root.
    pub paths: Vec<(u32, u32)>,
    pub totals: Vec<Totals>,
    index: HashMap<(u32, u32), u32>,
}

impl MergedTree {
    fn node(&mut self, parent: u32, name: u32) -> u32 {
        if self.paths.is_empty() {
            self.paths.push((ROOT, u32::MAX));
            self.totals.push(Totals::default());
        }
        let next = u32::try_from(self.paths.len()).unwrap_or(NO_NODE);
        let id = *self.index.entry((parent, name)).or_insert(next);
        if id == next {
            self.paths.push((parent, name));
            self.totals.push(Totals::default());
        }
        id
    }

    /// Adds nodes given as `(parent, name, totals)` by id, parents first (one thread's, or a merged tree's).
    fn add<'a>(&mut self, nodes: impl Iterator<Item = (u32, u32, &'a Totals)>) {
        let mut mine = vec![ROOT];
        for (parent, name, totals) in nodes.skip(1) {
            let parent = mine.get(parent as usize).copied().unwrap_or(ROOT);
            let node = self.node(parent, name);
            mine.push(node);
            if let Some(sum) = self.totals.get_mut(node as usize) {
                sum.merge(totals);
            }
        }
    }

    pub fn add_thread(&mut self, shared: &SharedTree) {
        let nodes = shared.read();
        self.add(nodes.iter().map(|(parent, name, totals)| (*parent, *name, totals)));
    }

    pub fn merge(&mut self, other: &MergedTree) {
        self.add(other.paths.iter().zip(&other.totals).map(|((parent, name), totals)| (*parent, *name, totals)));
    }

    /// The totals of every span name over all its paths, indexed by name id.
    pub fn by_name(&self) -> Vec<Totals> {
        let mut names: Vec<Totals> = Vec::new();
        for ((_, name), totals) in self.paths.iter().zip(&self.totals).skip(1) {
            let name = *name as usize;
            if names.len() <= name {
                names.resize(name + 1, Totals::default());
            }
            names[name].merge(totals);
        }
        names
    }
}
