//! The call tree as folded stacks (`a;b;c 1234`), the input of flamegraph tools.

use crate::model::CallTree;

impl CallTree {
    /// Folded stacks, one line per call path with self time in nanoseconds (`a;b;c 1234`): the input of
    /// flamegraph tools such as `inferno-flamegraph` and `flamegraph.pl`.
    #[must_use]
    pub fn folded(&self) -> String {
        self.folded_with(|ns| ns)
    }

    /// Folded stacks with each self time as `value` makes it; paths it makes 0 are left out.
    pub(crate) fn folded_with(&self, value: impl Fn(u64) -> u64) -> String {
        let mut out = String::new();
        for (index, node) in self.nodes.iter().enumerate() {
            let value = value(node.self_ns);
            if value > 0 {
                out.push_str(&self.path(index));
                out.push(' ');
                out.push_str(&value.to_string());
                out.push('\n');
            }
        }
        out
    }
}
