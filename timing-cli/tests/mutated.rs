//! Property tests of every input `timing` parses (issue 27): summaries recorded for real, then mutated at
//! random (numbers made huge, zero or negative, strings emptied or lengthened, lists cut or emptied, fields
//! removed, bytes cut or flipped), given to `show`, `html` and `diff`. None may panic or hang; a file that is
//! no summary gets exit code 2 and a message naming it. Seeded, so that a failure replays; bounded in time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use timing_runtime::{CompareSettings, Comparison, TrainingSummary, timed};

#[timed(phase = "regions")]
fn regions(x: u64) -> u64 {
    (0..50).fold(x, |acc, i| acc.wrapping_mul(31).wrapping_add(i))
}

#[timed(phase = "update")]
fn update(x: u64) -> u64 {
    x ^ 0x55
}

#[timed(step)]
fn step(x: u64) -> u64 {
    update(regions(x))
}

#[timed(batch)]
fn train(steps: u64) -> u64 {
    (0..steps).fold(1, |x, _| step(x))
}

/// xorshift, seeded.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A recorded run, as JSON: every field a real summary has.
fn recorded() -> Value {
    for _ in 0..5 {
        train(40);
    }
    serde_json::to_value(timing_runtime::summary()).expect("a summary serialises")
}

/// `value` with one change somewhere inside it.
fn mutate(value: &mut Value, random: &mut Random) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[random.below(keys.len())];
            if random.below(6) == 0 {
                map.remove(key);
            } else if let Some(inner) = map.get_mut(key) {
                mutate(inner, random);
            }
        }
        Value::Array(items) if !items.is_empty() => match random.below(5) {
            0 => items.clear(),
            1 => items.truncate(random.below(items.len())),
            2 => {
                let copy = items[random.below(items.len())].clone();
                items.extend(std::iter::repeat_n(copy, 1 + random.below(300)));
            }
            _ => {
                let index = random.below(items.len());
                mutate(&mut items[index], random);
            }
        },
        Value::Number(_) => {
            *value = match random.below(7) {
                0 => Value::from(u64::MAX),
                1 => Value::from(0),
                2 => Value::from(-1),
                3 => Value::from(1e300),
                4 => Value::from(-1e300),
                5 => Value::from(0.5),
                _ => Value::from("12"),
            }
        }
        Value::String(text) => match random.below(4) {
            0 => text.clear(),
            1 => *text = "é<script>&\"".repeat(1 + random.below(50)),
            2 => *value = Value::Null,
            _ => *value = Value::from(7),
        },
        _ => *value = if random.below(2) == 0 { Value::Null } else { Value::from(vec![1, 2, 3]) },
    }
}

/// Runs `timing` with `args`, killed after `limit`: its exit code (`None` if it had to be killed) and
/// standard error.
fn timing(args: &[&Path], limit: Duration) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_timing"));
    command.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("timing starts");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waited for") {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return (status.code(), stderr);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return (None, String::new());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn folder() -> PathBuf {
    let path = std::env::temp_dir().join(format!("timing-cli-mutated-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("a folder");
    path
}

#[test]
fn mutated_summaries_never_panic_in_the_library() {
    let original = recorded();
    let base: TrainingSummary = serde_json::from_value(original.clone()).expect("the original reads back");
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let mut read = 0;
    for case in 0..400 {
        let mut value = original.clone();
        for _ in 0..1 + random.below(2) {
            mutate(&mut value, &mut random);
        }
        let Ok(run) = serde_json::from_value::<TrainingSummary>(value) else { continue };
        read += 1;
        let outcome = std::panic::catch_unwind(|| {
            let text = run.to_string();
            let metrics = run.to_prometheus();
            let page = run.to_html("mutated").map(|page| page.len()).unwrap_or(0);
            let settings = CompareSettings::default();
            let one =
                Comparison::of_runs(std::slice::from_ref(&base), std::slice::from_ref(&run), &settings).to_string();
            let several =
                Comparison::of_runs(&[base.clone(), run.clone()], &[run.clone(), base.clone()], &settings).to_string();
            text.len() + metrics.len() + page + one.len() + several.len()
        });
        assert!(outcome.is_ok(), "case {case} panicked");
    }
    // Most mutations change a field's type, which serde refuses (the command-line test sees those refused
    // with a message); enough must read back to say something of the rest.
    assert!(read >= 60, "only {read} of 400 mutated summaries read back");
}

#[test]
fn mutated_files_get_an_answer_or_a_named_error_from_every_command() {
    let dir = folder();
    let original = recorded();
    let good = dir.join("good.json");
    std::fs::write(&good, original.to_string()).expect("written");
    let text = original.to_string();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let limit = Duration::from_secs(20);
    for case in 0..40 {
        let path = dir.join(format!("case-{case}.json"));
        if case % 2 == 0 {
            let mut value = original.clone();
            for _ in 0..1 + random.below(4) {
                mutate(&mut value, &mut random);
            }
            std::fs::write(&path, value.to_string()).expect("written");
        } else {
            // Bytes: cut short, or one flipped.
            let mut bytes = text.clone().into_bytes();
            if random.below(2) == 0 {
                bytes.truncate(random.below(bytes.len()));
            } else {
                let at = random.below(bytes.len());
                bytes[at] ^= 1 << random.below(8);
            }
            std::fs::write(&path, bytes).expect("written");
        }
        let page = dir.join(format!("case-{case}.html"));
        let runs: [Vec<&Path>; 4] = [
            vec![Path::new("show"), &path],
            vec![Path::new("html"), &path, Path::new("-o"), &page],
            vec![Path::new("diff"), &good, &path],
            vec![Path::new("diff"), &path, &good, &good, Path::new("--"), &path, &good],
        ];
        for args in runs {
            let (code, stderr) = timing(&args, limit);
            let shown: Vec<String> = args.iter().map(|arg| arg.display().to_string()).collect();
            assert!(code.is_some(), "timing {shown:?} hung");
            assert!(!stderr.contains("panicked"), "timing {shown:?} panicked: {stderr}");
            // 0: shown or compared; 1: a comparison's verdict; 2: a file that is no summary, named.
            match code {
                Some(0 | 1) => {}
                Some(2) => assert!(stderr.contains(&format!("case-{case}.json")), "timing {shown:?}: {stderr}"),
                other => panic!("timing {shown:?} exited with {other:?}: {stderr}"),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
