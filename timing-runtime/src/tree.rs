//! The call tree as it is recorded. Each thread finds a call's node in a thread-local structure by walking
//! the few children of its caller's node; a new path is shared once, under a lock, with its counters. A
//! call of a name already active on the path is folded into that active node (its time is inside the
//! outer call's already), so the tree is bounded by the distinct call paths without repeats, however deep
//! the recursion.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::counters::{NodeCounters, Totals};

/// The local id of the node above every top-level call.
pub(crate) const ROOT: u32 = 0;
/// No node: granularity below `Detailed`, or the thread's tree is full.
pub(crate) const NO_NODE: u32 = u32::MAX;
const MAX_NODES: usize = 16_384;

/// A path as shared with reports: its caller's shared id and its span name id.
struct SharedNode {
    parent: u32,
    name: u32,
    counters: Arc<NodeCounters>,
}

/// What a thread shares of its tree; shared id 0 is the root.
pub(crate) struct SharedTree {
    nodes: Mutex<Vec<SharedNode>>,
}

impl SharedTree {
    pub fn new() -> Self {
        let root = SharedNode { parent: 0, name: u32::MAX, counters: Arc::new(NodeCounters::new()) };
        SharedTree { nodes: Mutex::new(vec![root]) }
    }

    fn add(&self, parent: u32, name: u32) -> (u32, Arc<NodeCounters>) {
        let counters = Arc::new(NodeCounters::new());
        let mut nodes = self.nodes.lock();
        nodes.push(SharedNode { parent, name, counters: Arc::clone(&counters) });
        (u32::try_from(nodes.len() - 1).unwrap_or(u32::MAX), counters)
    }

    /// Zeroes every node's counters, for a new epoch; the paths stay, as the local tree mirrors them.
    pub fn clear(&self) {
        for node in self.nodes.lock().iter() {
            node.counters.clear();
        }
    }

    /// `(parent, name, counters)` of each node, read without holding the lock while counters are read.
    pub fn read(&self) -> Vec<(u32, u32, Totals)> {
        let nodes: Vec<(u32, u32, Arc<NodeCounters>)> =
            self.nodes.lock().iter().map(|node| (node.parent, node.name, Arc::clone(&node.counters))).collect();
        nodes.into_iter().map(|(parent, name, counters)| (parent, name, counters.read())).collect()
    }
}

struct LocalNode {
    name: u32,
    /// Local id of the caller's node.
    parent: u32,
    first_child: u32,
    next_sibling: u32,
    /// Where a call on this path is counted: itself, or the active node of the same name it folds into.
    target: u32,
    /// The target's shared id and counters.
    shared: u32,
    counters: Arc<NodeCounters>,
    /// Calls counted by this node (as a target) now open on the thread's stack.
    open: u32,
}

/// The thread-local mirror of the shared tree, for finding a child without a lock.
pub(crate) struct LocalTree {
    nodes: Vec<LocalNode>,
}

impl LocalTree {
    pub const fn new() -> Self {
        LocalTree { nodes: Vec::new() }
    }

    /// The node counting a call of `name` made from node `parent`.
    #[inline(always)]
    pub fn child(&mut self, parent: u32, name: u32, shared: &SharedTree) -> u32 {
        if let Some(parent_node) = self.nodes.get(parent as usize) {
            let mut next = parent_node.first_child;
            while let Some(node) = self.nodes.get(next as usize) {
                if node.name == name {
                    return node.target;
                }
                next = node.next_sibling;
            }
        }
        self.add(parent, name, shared)
    }

    /// Marks a call counted by `node` as open, and says whether another one already was: then this call is
    /// inside it (recursion, direct or not) and its inclusive time is the outer call's already.
    #[inline(always)]
    pub fn open(&mut self, node: u32) -> bool {
        match self.nodes.get_mut(node as usize) {
            Some(node) => {
                node.open = node.open.saturating_add(1);
                node.open > 1
            }
            None => true,
        }
    }

    /// Marks a call counted by `node` as closed.
    #[inline(always)]
    pub fn leave(&mut self, node: u32) {
        if let Some(node) = self.nodes.get_mut(node as usize) {
            node.open = node.open.saturating_sub(1);
        }
    }

    /// Marks a short-path call counted by `node` as closed and counts it (all but its duration).
    #[inline(always)]
    pub fn leave_span(&mut self, node: u32, elapsed: u64, self_ticks: u64) {
        if let Some(node) = self.nodes.get_mut(node as usize) {
            node.open = node.open.saturating_sub(1);
            node.counters.add_span(elapsed, self_ticks);
        }
    }

    #[inline(always)]
    pub fn counters(&self, node: u32) -> Option<&NodeCounters> {
        self.nodes.get(node as usize).map(|node| &*node.counters)
    }

    #[cold]
    #[inline(never)]
    fn add(&mut self, parent: u32, name: u32, shared: &SharedTree) -> u32 {
        if self.nodes.is_empty() {
            let root = Arc::new(NodeCounters::new());
            self.nodes.push(LocalNode {
                name: u32::MAX,
                parent: ROOT,
                first_child: NO_NODE,
                next_sibling: NO_NODE,
                target: ROOT,
                shared: 0,
                counters: root,
                open: 0,
            });
        }
        let (Some(parent_node), Ok(id)) = (self.nodes.get(parent as usize), u32::try_from(self.nodes.len())) else {
            return NO_NODE;
        };
        if self.nodes.len() >= MAX_NODES {
            return NO_NODE;
        }
        let parent_shared = parent_node.shared;
        let (target, shared_id, counters) = match self.active_ancestor(parent, name) {
            Some(ancestor) => {
                let node = &self.nodes[ancestor as usize];
                (ancestor, node.shared, Arc::clone(&node.counters))
            }
            None => {
                let (shared_id, counters) = shared.add(parent_shared, name);
                (id, shared_id, counters)
            }
        };
        let next_sibling = std::mem::replace(&mut self.nodes[parent as usize].first_child, id);
        self.nodes.push(LocalNode {
            name,
            parent,
            first_child: NO_NODE,
            next_sibling,
            target,
            shared: shared_id,
            counters,
            open: 0,
        });
        target
    }

    /// The node of `name` on the path from the root to `node`, if any.
    fn active_ancestor(&self, mut node: u32, name: u32) -> Option<u32> {
        while node != ROOT {
            let local = self.nodes.get(node as usize)?;
            if local.name == name {
                return Some(node);
            }
            node = local.parent;
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
