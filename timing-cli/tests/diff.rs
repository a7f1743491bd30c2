//! `timing diff` (issue 20): two runs of one workload compare as "no change within noise", a phase made 10%
//! slower is flagged, and only that phase, in at least 19 of 20 pairs; `--fail-above` exits non-zero only
//! then; bad files get an error naming the file and the position.

use std::hint::black_box;
use std::process::Command;
use std::sync::Mutex;

use timing_runtime::{Spread, TrainingSummary, Verdict, timed};

/// Work of a fixed number of instructions, about a nanosecond each.
#[inline(never)]
fn work(units: u64) -> u64 {
    (0..units).fold(units, |x, _| black_box(x).wrapping_mul(31).wrapping_add(7))
}

#[timed(phase = "assemble")]
fn assemble(units: u64) -> u64 {
    work(units)
}

#[timed(phase = "solve")]
fn solve(units: u64) -> u64 {
    work(units)
}

#[timed(phase = "update")]
fn update(units: u64) -> u64 {
    work(units)
}

#[timed(step)]
fn step(solve_units: u64) -> u64 {
    assemble(2_400) ^ solve(solve_units) ^ update(1_600)
}

/// Steps in a segment, and segments in a run.
const SEGMENT_STEPS: usize = 20;
const SEGMENTS: usize = 80;

/// A segment of a run: `SEGMENT_STEPS` steps, the `solve` phase of `solve_units`.
fn segment(solve_units: u64) -> TrainingSummary {
    timing_runtime::reset();
    for _ in 0..SEGMENT_STEPS {
        black_box(step(solve_units));
    }
    timing_runtime::summary()
}

/// `spread` with `other`'s values added.
fn merge_spread(spread: &mut Spread, other: &Spread) {
    let mut buckets = std::mem::take(&mut spread.buckets);
    buckets.extend(other.buckets.iter().copied());
    buckets.sort_unstable();
    for (value, count) in buckets {
        match spread.buckets.last_mut() {
            Some((last, sum)) if *last == value => *sum += count,
            _ => spread.buckets.push((value, count)),
        }
    }
}

/// `run` with `other`'s steps, phases and spans added, as one run of both.
fn merge(run: &mut TrainingSummary, other: &TrainingSummary) {
    run.total_steps += other.total_steps;
    run.total_ns += other.total_ns;
    merge_spread(&mut run.step_spread, &other.step_spread);
    for theirs in &other.phase_breakdown.phases {
        if let Some(mine) = run.phase_breakdown.phases.iter_mut().find(|share| share.phase == theirs.phase) {
            mine.ns += theirs.ns;
            merge_spread(&mut mine.spread, &theirs.spread);
        }
    }
    for theirs in &other.spans {
        if let Some(mine) = run.spans.iter_mut().find(|stats| stats.name == theirs.name) {
            (mine.count, mine.total_ns) = (mine.count + theirs.count, mine.total_ns + theirs.total_ns);
            merge_spread(&mut mine.spread, &theirs.spread);
        }
    }
}

/// Two runs of 800 steps (a 10% change is then told from noise at the default 5%: with 300, the medians'
/// intervals were too wide in about one pair of ten), `solve` phases of `first` and `second` units, recorded
/// in `SEGMENTS` segments each, taken in turn, so that a slower stretch of this shared machine (whose speed
/// moves by 10% or more within a second now and then) falls on both: what is tested is the comparison of
/// two recorded distributions, not the machine. Segments of 80 steps (18 ms in a debug build) let a pair
/// differ by 7% in one CI run of ten; of 20 steps, the interleaving is four times finer.
fn pair(first: u64, second: u64) -> (TrainingSummary, TrainingSummary) {
    let (mut a, mut b) = (segment(first), segment(second));
    for _ in 1..SEGMENTS {
        merge(&mut a, &segment(first));
        merge(&mut b, &segment(second));
    }
    (a, b)
}

/// The recorded data is process-wide: one test at a time.
static EXCLUSIVE: Mutex<()> = Mutex::new(());

fn verdicts(before: &TrainingSummary, after: &TrainingSummary) -> Vec<(String, Verdict, String)> {
    let comparison = before.compare(after);
    let show = |change: Option<(f64, f64, f64)>| {
        change.map_or("–".into(), |(l, m, h)| format!("{m:+.1}% [{l:+.1}, {h:+.1}]"))
    };
    comparison
        .phases
        .iter()
        .map(|change| (change.name.clone(), change.verdict, show(change.median_change_pct)))
        .collect()
}

/// Twenty pairs of runs of one workload and twenty with the `solve` phase 10% slower: how many of each
/// came out as they should, and what the others said.
fn twenty_pairs() -> (usize, usize, Vec<String>) {
    let (mut same_quiet, mut slower_flagged) = (0, 0);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let (first, second) = pair(2_000, 2_000);
        let same = verdicts(&first, &second);
        let step = first.compare(&second).step.verdict;
        if step == Verdict::NoChange && same.iter().all(|(_, verdict, _)| *verdict == Verdict::NoChange) {
            same_quiet += 1;
        } else {
            seen.push(format!("same: step {step:?}, {same:?}"));
        }
        let (before, after) = pair(2_000, 2_200);
        let slower = verdicts(&before, &after);
        let expected = |(phase, verdict, _): &(String, Verdict, String)| match phase.as_str() {
            "solve" => *verdict == Verdict::Slower,
            _ => *verdict == Verdict::NoChange,
        };
        if slower.len() == 3 && slower.iter().all(expected) {
            slower_flagged += 1;
        } else {
            seen.push(format!("solve +10%: {slower:?}"));
        }
    }
    (same_quiet, slower_flagged, seen)
}

#[test]
fn repeated_runs_of_one_workload_are_no_change_and_a_slower_phase_is_flagged_alone() {
    let _exclusive = EXCLUSIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    black_box(segment(2_000));
    // Three tries of the whole experiment, for a shared machine whose other work can shift a run by more
    // than the noise level now and then: in a busy hour of this VM (the same test taking 13 to 35 s), one
    // experiment in five saw the 10% change as 5 to 8% in two or three of its twenty pairs. A comparison
    // that is wrong fails all three (with the noise level at 0.5%, 3 of 20 same-workload pairs were flagged
    // every time).
    let mut tries = Vec::new();
    for _ in 0..3 {
        let (same_quiet, slower_flagged, seen) = twenty_pairs();
        if same_quiet >= 19 && slower_flagged >= 19 {
            return;
        }
        tries.push(format!(
            "{same_quiet} of 20 same pairs quiet, {slower_flagged} of 20 slower flagged alone: {seen:#?}"
        ));
    }
    panic!("{}", tries.join("\n"));
}

/// Writes `run` as JSON to a file of this test's.
fn save(name: &str, run: &TrainingSummary) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("timing-cli-{}-{name}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string(run).expect("serialised")).expect("written");
    path
}

fn timing(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_timing")).args(args).output().expect("timing runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

#[test]
fn fail_above_exits_non_zero_only_for_a_real_slowdown_and_bad_files_are_named() {
    let _exclusive = EXCLUSIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    black_box(segment(2_000));
    // Each comparison between the two runs of one pair, recorded in turn, so that the machine's drift
    // between pairs is not taken for a change.
    let ((before, same), (slower_before, slower)) = (pair(2_000, 2_000), pair(2_000, 2_400));
    let (before, same) = (save("before", &before), save("same", &same));
    let (slower_before, slower) = (save("slower-before", &slower_before), save("slower", &slower));
    let path = |path: &std::path::PathBuf| path.as_os_str().to_owned();
    let flag = |text: &str| std::ffi::OsString::from(text);

    let (code, out, _) = timing(&[&flag("diff"), &path(&before), &path(&same), &flag("--fail-above"), &flag("5")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no change within noise"), "{out}");
    let (code, out, err) =
        timing(&[&flag("diff"), &path(&slower_before), &path(&slower), &flag("--fail-above"), &flag("5")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("solve") && !err.contains("assemble"), "{err}");
    // Slower, but not by more than the limit asked for.
    let (code, _, _) =
        timing(&[&flag("diff"), &path(&slower_before), &path(&slower), &flag("--fail-above"), &flag("50")]);
    assert_eq!(code, 0);
    let (code, out, _) = timing(&[&flag("diff"), &path(&slower_before), &path(&slower), &flag("--markdown")]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("| | before | after |") && out.contains("| solve |") && out.contains("**slower**"),
        "{out}"
    );
    let (code, out, _) = timing(&[&flag("show"), &path(&before)]);
    assert_eq!(code, 0);
    assert!(out.contains("Summary:") && out.contains("Solve:"), "{out}");

    // Bad files: truncated, not JSON, not a summary, missing; each an error naming it, exit status 2.
    let text = std::fs::read_to_string(&before).expect("saved");
    let truncated = before.with_extension("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).expect("written");
    let garbage = before.with_extension("garbage.json");
    std::fs::write(&garbage, "{\"total_steps\": 3,\n oops}").expect("written");
    let other = before.with_extension("other.json");
    std::fs::write(&other, "{\"hello\": 1}").expect("written");
    let missing = before.with_extension("missing.json");
    for (bad, says) in [
        (&truncated, "ends too early"),
        (&garbage, "line 2"),
        (&other, "not a timing summary"),
        (&missing, "cannot read"),
    ] {
        let (code, _, err) = timing(&[&flag("diff"), &path(bad), &path(&same)]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&bad.display().to_string()) && err.contains(says), "{err}");
    }
    // A summary saved before per-step distributions were kept: it loads; its changes get no verdict.
    let mut old: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    for field in ["version", "step_spread"] {
        old.as_object_mut().expect("an object").remove(field);
    }
    for share in old["phase_breakdown"]["phases"].as_array_mut().expect("phases") {
        share.as_object_mut().expect("an object").remove("spread");
    }
    let old_path = before.with_extension("old.json");
    std::fs::write(&old_path, old.to_string()).expect("written");
    let (code, out, err) = timing(&[&flag("diff"), &path(&old_path), &path(&same)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no per-step distributions") && out.contains("unknown"), "{out}{err}");
    // A summary from a newer version is refused by name.
    let mut newer: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    newer["version"] = "99.0.0".into();
    let newer_path = before.with_extension("newer.json");
    std::fs::write(&newer_path, newer.to_string()).expect("written");
    let (code, _, err) = timing(&[&flag("show"), &path(&newer_path)]);
    assert_eq!(code, 2);
    assert!(err.contains("99.0.0") && err.contains("newer"), "{err}");
    for file in [before, same, slower, truncated, garbage, other, old_path, newer_path] {
        let _ = std::fs::remove_file(file);
    }
}
