//! The bound on batch labels chosen at run time (issue 26, point 4), in a process of its own: the labels a
//! process keeps apart are its first 1,024, whatever the tests beside it made.

#![cfg(feature = "timing")]

mod common;

use common::exclusive;
use timing_runtime::summary;

#[test]
fn a_label_per_request_keeps_at_most_1024_spans() {
    let _exclusive = exclusive();
    for request in 0..1_100 {
        let ((), _) = timing_runtime::batch(&format!("request-{request}"), || {});
    }
    let run = summary();
    let kept = run.spans.iter().filter(|stats| stats.name.starts_with("request-")).count();
    let other = run.span("other batch labels (beyond 1,024)").map_or(0, |stats| stats.count);
    assert_eq!(kept, 1_024);
    assert_eq!(kept as u64 + other, 1_100);
}
