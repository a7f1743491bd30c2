//! The call tree of a run: per call path, how often, how long, and what share of its caller.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Timed calls by call path, merged across threads, in depth-first order with the costliest child first.
/// A recursive call is folded into the active call of the same name, so the tree stays as small as the
/// distinct call paths. Prints as indented text; [`folded`](Self::folded) gives flamegraph input.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct CallTree {
    /// The nodes; a node's parent comes before it.
    pub nodes: Vec<CallNode>,
}

/// One call path.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct CallNode {
    /// The span name of the last call on the path.
    pub name: String,
    /// The caller's node: an index into [`CallTree::nodes`]; `None` for calls with no timed caller.
    pub parent: Option<usize>,
    /// The number of timed callers above this node.
    pub depth: usize,
    /// Calls on this path.
    pub count: u64,
    /// Inclusive time.
    pub total_ns: u64,
    /// Time not spent in timed callees.
    pub self_ns: u64,
    /// `total_ns` as a percentage of the caller's, or of all top-level time for a top-level node.
    pub pct_of_parent: f64,
}

impl CallTree {
    /// The path of names from the top down to `node`, joined with `;`. A parent that does not come before
    /// its child (a tree read from a file someone edited) ends the path there.
    #[must_use]
    pub fn path(&self, node: usize) -> String {
        let mut names = Vec::new();
        let mut next = Some(node);
        while let Some(index) = next {
            let Some(node) = self.nodes.get(index) else { break };
            names.push(node.name.as_str());
            next = node.parent.filter(|parent| *parent < index);
        }
        names.reverse();
        names.join(";")
    }
}
