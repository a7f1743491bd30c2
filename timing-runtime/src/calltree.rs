//! The call tree of a run: per call path, how often, how long, and what share of its caller.

use std::fmt::{self, Display, Formatter};

use serde::{Deserialize, Serialize};

use crate::report::Duration;

/// Timed calls by call path, merged across threads, in depth-first order with the costliest child first.
/// A recursive call is folded into the active call of the same name, so the tree stays as small as the
/// distinct call paths. Prints as indented text; [`folded`](Self::folded) gives flamegraph input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallTree {
    /// The nodes; a node's parent comes before it.
    pub nodes: Vec<CallNode>,
}

/// One call path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// The path of names from the top down to `node`, joined with `;`.
    #[must_use]
    pub fn path(&self, node: usize) -> String {
        let mut names = Vec::new();
        let mut next = Some(node);
        while let Some(index) = next {
            let Some(node) = self.nodes.get(index) else { break };
            names.push(node.name.as_str());
            next = node.parent;
        }
        names.reverse();
        names.join(";")
    }

    /// Folded stacks, one line per call path with self time in nanoseconds (`a;b;c 1234`): the input of
    /// flamegraph tools such as `inferno-flamegraph` and `flamegraph.pl`.
    #[must_use]
    pub fn folded(&self) -> String {
        let mut out = String::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if node.self_ns > 0 {
                out.push_str(&self.path(index));
                out.push(' ');
                out.push_str(&node.self_ns.to_string());
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(feature = "flamegraph")]
impl CallTree {
    /// The tree drawn as a flamegraph (SVG), widths by self time; needs the `flamegraph` feature.
    ///
    /// # Errors
    /// When the tree is empty, or the drawing fails.
    pub fn flamegraph_svg(&self, title: &str) -> std::io::Result<String> {
        let folded = self.folded();
        if folded.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no timed calls to draw"));
        }
        let mut options = inferno::flamegraph::Options::default();
        title.clone_into(&mut options.title);
        "ns".clone_into(&mut options.count_name);
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg)?;
        String::from_utf8(svg).map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))
    }
}

impl Display for CallTree {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let width = self.nodes.iter().map(|node| 2 * node.depth + node.name.chars().count()).max().unwrap_or(0).max(4);
        writeln!(f, "{:<width$}  {:>10}  {:>10}  {:>10}  {:>6}", "call", "count", "total", "self", "%")?;
        for node in &self.nodes {
            let label = format!("{}{}", "  ".repeat(node.depth), node.name);
            writeln!(
                f,
                "{label:<width$}  {:>10}  {:>10}  {:>10}  {:>5.1}%",
                node.count,
                Duration(node.total_ns),
                Duration(node.self_ns),
                node.pct_of_parent
            )?;
        }
        Ok(())
    }
}
