//! The call tree as folded stacks (`a;b;c 1234`), the input of flamegraph tools.

use crate::model::CallTree;

impl CallTree {
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
