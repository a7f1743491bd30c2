//! `timing html` (issue 20): the page written from a saved summary is the page of the live run, so the
//! saved JSON holds all the page needs (the batch series, the histograms, the call tree); wrong arguments
//! and unreadable files are refused with exit status 2 and nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

use timing_runtime::{summary, timed};

#[timed(phase = "assemble")]
fn assemble(units: u64) -> u64 {
    (0..units).fold(units, |x, _| std::hint::black_box(x).wrapping_mul(31).wrapping_add(7))
}

#[timed(phase = "solve")]
fn solve(units: u64) -> u64 {
    assemble(units / 2) ^ units
}

#[timed(step)]
fn step(units: u64) -> u64 {
    assemble(units) ^ solve(units * 3)
}

#[timed(batch)]
fn batch(units: u64) -> u64 {
    (0..25).fold(0, |sum, _| sum ^ step(units))
}

fn timing(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_timing")).args(args).output().expect("timing runs");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html");
    std::fs::create_dir_all(&dir).expect("a directory");
    dir
}

#[test]
fn the_page_of_a_saved_run_is_the_page_of_the_live_run() {
    for index in 0..12 {
        batch(200 + 50 * index);
    }
    let run = summary();
    assert_eq!(run.batch_points.len(), 12);
    let dir = dir();
    let saved = dir.join("run.json");
    std::fs::write(&saved, serde_json::to_string(&run).expect("JSON")).expect("saved");
    let page = dir.join("page.html");
    let _ = std::fs::remove_file(&page);
    let (code, stderr) =
        timing(&["html", saved.to_str().expect("a path"), "-o", page.to_str().expect("a path"), "--title", "the run"]);
    assert_eq!(code, 0, "{stderr}");
    let written = std::fs::read_to_string(&page).expect("the page is written");
    assert_eq!(written, run.to_html("the run").expect("the live run's page"));
    for part in ["id=\"over-the-run\"", "assemble", "solve", "id=\"flamegraph\"", "id=\"span-table\""] {
        assert!(written.contains(part), "{part}");
    }

    // Without -o, beside the summary with the extension .html, titled with the file's name.
    let beside = dir.join("run.html");
    let _ = std::fs::remove_file(&beside);
    let (code, stderr) = timing(&["html", saved.to_str().expect("a path")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(std::fs::read_to_string(&beside).expect("written beside").contains("<title>run.json:"));
}

#[test]
fn bad_arguments_and_files_are_refused() {
    let dir = dir();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{\"total_steps\": 3,").expect("written");
    let garbage = garbage.to_str().expect("a path");
    let out = dir.join("never.html");
    let _ = std::fs::remove_file(&out);
    let out = out.to_str().expect("a path");
    let cases: [(&[&str], &str); 6] = [
        // Each error names what was wrong: the argument missing, the value missing, the one not known.
        (&["html"], "required arguments were not provided:\n  <RUN.json>"),
        (&["html", garbage, "-o", out], "ends too early"),
        (&["html", "missing.json", "-o", out], "cannot read missing.json"),
        (&["html", garbage, "-o"], "a value is required for '--output <PAGE.html>'"),
        (&["html", garbage, "--colour", "red"], "unexpected argument '--colour'"),
        (&["html", "a.json", "b.json"], "unexpected argument 'b.json'"),
    ];
    for (args, message) in cases {
        let (code, stderr) = timing(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(!Path::new(out).exists());
    // A summary saved under a name ending in .html is not overwritten by its own page.
    let html = dir.join("same.html");
    let json = serde_json::to_string(&timing_runtime::TrainingSummary::default()).expect("JSON");
    std::fs::write(&html, &json).expect("written");
    let (code, stderr) = timing(&["html", html.to_str().expect("a path")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("would overwrite the summary"), "{stderr}");
    // However the output's path is written.
    let dotted = dir.join(".").join("same.html");
    let (code, stderr) = timing(&["html", html.to_str().expect("a path"), "-o", dotted.to_str().expect("a path")]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(std::fs::read_to_string(&html).expect("kept"), json);
}
