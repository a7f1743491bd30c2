//! The call tree as it is recorded. Each thread finds a call's edge (its name called from its caller's
//! node) in a thread-local structure by walking the few edges out of the caller's node; a new node is
//! shared once, under a lock, with its counters. A call of a name already on the path is an edge back to
//! that name's node, whose counters it shares (its time is inside the outer call's already), so the tree is
//! bounded by the distinct call paths without repeats, however deep the recursion. Each node carries the
//! process-wide id of its path (`paths`), by which reports add threads' counters together. Durations are
//! kept per span name, in one histogram per name the thread has called, which all the name's nodes share.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::store::counters::{self, NodeCounters, PER_SLAB, Slab, Totals, UNUSED};
use crate::store::hist::{self, AtomicHistogram, Histogram};
use crate::store::paths;

/// The local id of the node above every top-level call.
pub(crate) const ROOT: u32 = 0;
/// No node: granularity below `Detailed`, or the thread's tree is full.
pub(crate) const NO_NODE: u32 = u32::MAX;
const MAX_EDGES: usize = 16_384;

/// A node as shared with reports.
struct SharedNode {
    /// The process-wide id of its path.
    path: u32,
    /// The span name id of its last call.
    name: u32,
    counters: &'static NodeCounters,
}

/// What a thread shares of its tree: its nodes in the order they were made, the slabs of their counters,
/// and the duration histograms of the span names it has called.
pub(crate) struct SharedTree {
    nodes: Mutex<Vec<SharedNode>>,
    slabs: Mutex<Vec<&'static Slab>>,
    /// `(span name id, durations)`, one per name.
    durations: Mutex<Vec<(u32, &'static AtomicHistogram)>>,
    /// What only `async fn` calls have, by path id: wall time of completed calls, and calls dropped before
    /// they completed with the ticks of their polls. Apart from the node counters, which the hot path
    /// writes, as these change on the slow path only.
    async_calls: Mutex<HashMap<u32, (u32, AsyncTotals)>>,
}

/// The `async fn` totals of one path on one thread.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AsyncTotals {
    pub wall: u64,
    pub cancelled: u64,
    pub cancelled_ticks: u64,
}

impl SharedTree {
    pub fn new() -> Self {
        SharedTree {
            nodes: Mutex::new(Vec::new()),
            slabs: Mutex::new(Vec::new()),
            durations: Mutex::new(Vec::new()),
            async_calls: Mutex::new(HashMap::new()),
        }
    }

    fn add(&self, node: SharedNode) {
        self.nodes.lock().push(node);
    }

    /// Zeroes every node's counters and every name's durations, for a new epoch; the paths stay, as the
    /// local tree mirrors them.
    pub fn clear(&self) {
        for node in self.nodes.lock().iter() {
            node.counters.clear();
        }
        for (_, durations) in self.durations.lock().iter() {
            durations.clear();
        }
        self.async_calls.lock().clear();
    }

    /// Adds to the `async fn` totals of path `path` (of span name `name`).
    pub fn add_async(&self, path: u32, name: u32, add: AsyncTotals) {
        let mut calls = self.async_calls.lock();
        let (_, totals) = calls.entry(path).or_insert((name, AsyncTotals::default()));
        totals.wall = totals.wall.saturating_add(add.wall);
        totals.cancelled = totals.cancelled.saturating_add(add.cancelled);
        totals.cancelled_ticks = totals.cancelled_ticks.saturating_add(add.cancelled_ticks);
    }

    /// Adds each name's durations to `by_name`, indexed by span name id.
    pub fn add_durations_to(&self, by_name: &mut Vec<Histogram>) {
        let durations: Vec<(usize, &AtomicHistogram)> =
            self.durations.lock().iter().map(|(name, histogram)| (*name as usize, *histogram)).collect();
        let names = durations.iter().map(|(name, _)| name + 1).max().unwrap_or(0);
        if by_name.len() < names {
            by_name.resize(names, Histogram::default());
        }
        hist::add_many(&durations, by_name);
    }

    /// Adds each node's counters to `by_path`, indexed by path id, leaving out nodes whose paths it does
    /// not cover (made since it was sized), and to `by_name`, indexed by span name id.
    pub fn add_totals_to(&self, by_path: &mut Vec<PathTotals>, by_name: &mut Vec<Totals>) {
        self.add_totals(by_path, false, by_name);
    }

    /// Adds each node's counters as `add_totals_to` does, growing `by_path` to cover every node's path: for
    /// an exiting thread, whose nodes go to the exited threads' totals, in work and memory that follow its
    /// own nodes (sizing the table by every path of the process, at every exit, cost a pool that recycles
    /// threads hundreds of MiB of per-thread arenas).
    pub fn add_totals_growing(&self, by_path: &mut Vec<PathTotals>, by_name: &mut Vec<Totals>) {
        self.add_totals(by_path, true, by_name);
    }

    fn add_totals(&self, by_path: &mut Vec<PathTotals>, grow: bool, by_name: &mut Vec<Totals>) {
        let cover = |by_path: &mut Vec<PathTotals>, path: u32| {
            if grow && by_path.len() <= path as usize {
                by_path.resize(path as usize + 1, PathTotals::default());
            }
        };
        let nodes: Vec<(u32, u32, &'static NodeCounters)> =
            self.nodes.lock().iter().map(|node| (node.path, node.name, node.counters)).collect();
        for (path, name, counters) in nodes {
            cover(by_path, path);
            let Some(path_totals) = by_path.get_mut(path as usize) else { continue };
            let totals = counters.read();
            path_totals.add(&totals);
            let name = name as usize;
            if by_name.len() <= name {
                by_name.resize(name + 1, Totals::default());
            }
            by_name[name].merge(&totals);
        }
        let async_calls: Vec<(u32, u32, AsyncTotals)> =
            self.async_calls.lock().iter().map(|(path, (name, totals))| (*path, *name, *totals)).collect();
        for (path, name, calls) in async_calls {
            cover(by_path, path);
            let Some(path_totals) = by_path.get_mut(path as usize) else { continue };
            let totals = Totals {
                wall: calls.wall,
                cancelled: calls.cancelled,
                cancelled_ticks: calls.cancelled_ticks,
                ..Totals::default()
            };
            path_totals.add(&totals);
            let name = name as usize;
            if by_name.len() <= name {
                by_name.resize(name + 1, Totals::default());
            }
            by_name[name].merge(&totals);
        }
    }
}

impl Drop for SharedTree {
    fn drop(&mut self) {
        self.nodes.get_mut().clear();
        counters::give_back(self.slabs.get_mut().drain(..));
        hist::give_back(self.durations.get_mut().drain(..).map(|(_, histogram)| histogram));
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
    /// The path id of the node it enters.
    path: u32,
    /// The target's counters.
    counters: &'static NodeCounters,
}

/// The thread-local mirror of the shared tree, for finding an edge without a lock.
pub(crate) struct LocalTree {
    edges: Vec<LocalEdge>,
    /// The durations of each span name called so far, by name id.
    durations: Vec<Option<&'static AtomicHistogram>>,
    /// The slab new nodes' counters come from, and how many of its counters are taken.
    slab: Option<(&'static Slab, usize)>,
}

impl LocalTree {
    pub const fn new() -> Self {
        LocalTree { edges: Vec::new(), durations: Vec::new(), slab: None }
    }

    /// Counters for a new node of `name`, from the thread's slab, or a new slab when it is used up.
    fn take_counters(&mut self, name: u32, shared: &SharedTree) -> &'static NodeCounters {
        let durations = self.durations(name, shared);
        let (slab, used) = match self.slab {
            Some((slab, used)) if used < PER_SLAB => (slab, used),
            _ => {
                let slab = counters::take_slab();
                shared.slabs.lock().push(slab);
                (slab, 0)
            }
        };
        self.slab = Some((slab, used + 1));
        slab.counters(used, durations).unwrap_or(&UNUSED)
    }

    /// The histogram of `name`'s durations, made and shared on the name's first call.
    fn durations(&mut self, name: u32, shared: &SharedTree) -> &'static AtomicHistogram {
        let index = name as usize;
        if self.durations.len() <= index {
            self.durations.resize(index + 1, None);
        }
        if let Some(histogram) = self.durations[index] {
            return histogram;
        }
        let histogram = hist::take();
        shared.durations.lock().push((name, histogram));
        self.durations[index] = Some(histogram);
        histogram
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
                path: paths::ROOT,
                counters: &UNUSED,
            });
        }
        let (Some(_), Ok(id)) = (self.edges.get(parent as usize), u32::try_from(self.edges.len())) else {
            return (NO_NODE, &UNUSED);
        };
        if self.edges.len() >= MAX_EDGES {
            return (NO_NODE, &UNUSED);
        }
        let (target, path, counters) = match self.node_on_path(parent, name) {
            Some(node) => (node, self.edges[node as usize].path, self.edges[node as usize].counters),
            None => {
                let Some(path) = paths::intern(self.edges[parent as usize].path, name) else {
                    return (NO_NODE, &UNUSED);
                };
                let counters = self.take_counters(name, shared);
                shared.add(SharedNode { path, name, counters });
                (id, path, counters)
            }
        };
        let next_sibling = std::mem::replace(&mut self.edges[parent as usize].first_child, id);
        self.edges.push(LocalEdge { name, parent, first_child: NO_NODE, next_sibling, target, path, counters });
        (target, counters)
    }

    /// The path id and span name id of node `node`.
    pub fn path_and_name(&self, node: u32) -> Option<(u32, u32)> {
        self.edges.get(node as usize).filter(|_| node != ROOT).map(|edge| (edge.path, edge.name))
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

/// What the call tree shows of a path: a call tree node's numbers, 32 bytes, so that a report's walk over
/// tens of thousands of paths stays in cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PathTotals {
    pub count: u64,
    pub total: u64,
    pub self_ticks: u64,
    pub cancelled: u64,
    /// Calls counted but not timed, under an overhead budget, and those of them that had frames.
    pub untimed: u64,
    pub untimed_framed: u64,
}

impl PathTotals {
    fn add(&mut self, totals: &Totals) {
        self.count = self.count.saturating_add(totals.count);
        self.total = self.total.saturating_add(totals.total);
        self.self_ticks = self.self_ticks.saturating_add(totals.self_ticks);
        self.cancelled = self.cancelled.saturating_add(totals.cancelled);
        self.untimed = self.untimed.saturating_add(totals.untimed);
        self.untimed_framed = self.untimed_framed.saturating_add(totals.untimed_framed);
    }

    fn merge(&mut self, other: &PathTotals) {
        self.add(&Totals {
            count: other.count,
            total: other.total,
            self_ticks: other.self_ticks,
            cancelled: other.cancelled,
            untimed: other.untimed,
            untimed_framed: other.untimed_framed,
            ..Totals::default()
        });
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.cancelled == 0 && self.self_ticks == 0 && self.total == 0
    }
}

/// Call trees of several threads merged by path; a node's parent always comes before it.
#[derive(Clone, Debug, Default)]
pub(crate) struct MergedTree {
    /// `(parent, span name id)` by path id; path 0 is the root.
    pub paths: Vec<(u32, u32)>,
    /// By path id.
    pub totals: Vec<PathTotals>,
    /// By span name id, over all its paths.
    pub names: Vec<Totals>,
    /// Durations by span name id, over all its paths.
    pub durations: Vec<Histogram>,
}

impl MergedTree {
    /// Takes in the paths interned so far: every node listed by a thread before this call can then be added
    /// (a node is listed only after its path is interned). Once per report, not per thread: the table is
    /// as long as the distinct paths of the process.
    pub fn refresh_paths(&mut self) {
        self.paths = paths::all();
        if self.totals.len() < self.paths.len() {
            self.totals.resize(self.paths.len(), PathTotals::default());
        }
    }

    /// Adds a thread's nodes whose paths this tree has (those made since `refresh_paths` wait for the next
    /// report), and its durations.
    pub fn add_thread(&mut self, shared: &SharedTree) {
        if self.paths.is_empty() {
            self.refresh_paths();
        }
        shared.add_totals_to(&mut self.totals, &mut self.names);
        shared.add_durations_to(&mut self.durations);
    }

    /// Adds an exiting thread's nodes, growing the totals to cover their paths, and its durations; without
    /// the process's paths, which only a report needs.
    pub fn add_exiting_thread(&mut self, shared: &SharedTree) {
        shared.add_totals_growing(&mut self.totals, &mut self.names);
        shared.add_durations_to(&mut self.durations);
    }

    pub fn merge(&mut self, other: &MergedTree) {
        if self.paths.len() < other.paths.len() {
            self.paths.clone_from(&other.paths);
        }
        merge_by_id(&mut self.totals, &other.totals, PathTotals::merge);
        merge_by_id(&mut self.names, &other.names, Totals::merge);
        merge_by_id(&mut self.durations, &other.durations, Histogram::merge);
    }
}

/// Merges `theirs` into `mine` index by index, growing `mine` to cover it.
fn merge_by_id<T: Clone + Default>(mine: &mut Vec<T>, theirs: &[T], merge: impl Fn(&mut T, &T)) {
    if mine.len() < theirs.len() {
        mine.resize(theirs.len(), T::default());
    }
    for (mine, theirs) in mine.iter_mut().zip(theirs) {
        merge(mine, theirs);
    }
}
