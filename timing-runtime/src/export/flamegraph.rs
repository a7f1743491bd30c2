//! The call tree drawn as a flamegraph (SVG) by inferno, the Rust port of `flamegraph.pl`.

use crate::model::CallTree;

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
