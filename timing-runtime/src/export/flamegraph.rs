//! The call tree drawn as a flamegraph (SVG) by inferno, the Rust port of `flamegraph.pl`.

use crate::model::CallTree;

impl CallTree {
    /// The tree drawn as a flamegraph (SVG), widths by self time; needs the `flamegraph` feature.
    ///
    /// # Errors
    /// When the tree is empty, or the drawing fails.
    pub fn flamegraph_svg(&self, title: &str) -> std::io::Result<String> {
        let mut folded = self.folded();
        // inferno adds the widths up in a `usize`: times that could not add up (only in a tree read from an
        // edited file) are scaled down alike, which draws the same picture.
        let total = self.nodes.iter().fold(0u128, |sum, node| sum + u128::from(node.self_ns));
        if total > 1 << 60 {
            let shift = 128 - total.leading_zeros() - 60;
            folded = self.folded_with(|ns| ns >> shift);
        }
        if folded.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no timed calls to draw"));
        }
        let mut options = inferno::flamegraph::Options::default();
        title.clone_into(&mut options.title);
        "ns".clone_into(&mut options.count_name);
        // Colours from the names, not drawn at random: the same tree draws the same picture, so that a
        // file kept (an MLflow artifact, a saved page) can be compared with one drawn again.
        options.deterministic = true;
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg)?;
        String::from_utf8(svg).map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{CallNode, CallTree};

    fn node(name: &str, parent: Option<usize>, self_ns: u64) -> CallNode {
        CallNode { name: name.to_owned(), parent, self_ns, total_ns: self_ns, count: 1, ..CallNode::default() }
    }

    #[test]
    fn the_same_tree_draws_the_same_picture() {
        let tree = CallTree { nodes: vec![node("a", None, 5), node("b", Some(0), 7), node("c", Some(0), 3)] };
        assert_eq!(tree.flamegraph_svg("t").expect("drawn"), tree.flamegraph_svg("t").expect("drawn"));
    }

    #[test]
    fn times_too_large_to_add_up_are_drawn_scaled() {
        let tree = CallTree { nodes: vec![node("a", None, u64::MAX), node("b", Some(0), u64::MAX / 2)] };
        let svg = tree.flamegraph_svg("huge").expect("drawn");
        assert!(svg.contains(">a<") || svg.contains("a ("), "{svg}");
    }

    #[test]
    fn a_tree_whose_parents_loop_ends_its_paths() {
        let tree = CallTree { nodes: vec![node("a", Some(1), 5), node("b", Some(0), 7), node("c", Some(2), 1)] };
        assert_eq!(tree.path(1), "a;b");
        assert_eq!(tree.path(0), "a");
        assert_eq!(tree.path(2), "c");
        assert!(tree.flamegraph_svg("loop").is_ok());
    }
}
