//! `timing ab`: two commands run in turn, each a whole process, and their runs compared in pairs. On a
//! shared machine whose speed drifts, runs made far apart differ for reasons of their own; made in turn
//! (A B, then B A, so that neither always goes first), each pair sees the same stretch of the machine, and
//! the pairs' ratios tell a change from the drift. Each process's wall time, measured here, is compared too:
//! the one figure a build with timing off has, so `timing ab 'OFF' 'ON'` measures what the instrumentation
//! costs the program as a whole.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use timing_runtime::TrainingSummary;

use clap::ArgMatches;

use crate::{Verdicts, load};

/// Runs a side by default: enough for the spread between runs to give intervals narrow enough to see a
/// 10% change of one phase (see `benches/diff-experiment.sh`), in a few seconds for a run of 0.2 s.
pub const DEFAULT_RUNS: usize = 8;

/// Where a command writes its summary: this placeholder in it is replaced with a file of `timing`'s;
/// without it, the command's standard output is read as the summary.
const PLACEHOLDER: &str = "{summary}";

struct Options {
    commands: Vec<String>,
    runs: usize,
    warmup: usize,
    save: Option<PathBuf>,
    verdicts: Verdicts,
}

fn options(args: &ArgMatches) -> Result<Options, String> {
    let commands: Vec<String> =
        args.get_many::<String>("commands").map(|values| values.cloned().collect()).unwrap_or_default();
    if commands.len() != 2 {
        return Err("`ab` takes two commands, each one argument (quote it); see --help".to_owned());
    }
    Ok(Options {
        commands,
        runs: args.get_one::<usize>("runs").copied().unwrap_or(DEFAULT_RUNS),
        warmup: args.get_one::<usize>("warmup").copied().unwrap_or(1),
        save: args.get_one::<String>("save").map(PathBuf::from),
        verdicts: Verdicts::from(args),
    })
}

/// `timing ab CMD_A CMD_B`: runs both `runs` times in turn and compares them in pairs.
pub fn ab(args: &ArgMatches) -> Result<u8, String> {
    let options = options(args)?;
    let scratch = std::env::temp_dir().join(format!("timing-ab-{}", std::process::id()));
    let folder = options.save.clone().unwrap_or_else(|| scratch.clone());
    std::fs::create_dir_all(&folder).map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
    let result = runs(&options, &folder);
    if options.save.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let (before, after, walls) = result?;
    Ok(options.verdicts.report(&before, &after, true, Some(walls)))
}

/// The runs of both commands, made in pairs.
/// The runs' wall times in nanoseconds, by side and run.
pub type Walls = (Vec<f64>, Vec<f64>);

fn runs(options: &Options, folder: &Path) -> Result<(Vec<TrainingSummary>, Vec<TrainingSummary>, Walls), String> {
    for round in 0..options.warmup {
        for (side, command) in ["a", "b"].iter().zip(&options.commands) {
            run_one(command, &folder.join(format!("warmup-{round}-{side}.json")))?;
        }
    }
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut walls: Walls = (Vec::new(), Vec::new());
    for pair in 0..options.runs {
        // A B, then B A: neither command always runs first (into the other's caches, after its exit).
        let order: [usize; 2] = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut summaries: [Option<TrainingSummary>; 2] = [None, None];
        let mut wall = [0.0; 2];
        for side in order {
            let name = format!("{}-{}.json", ["a", "b"][side], pair + 1);
            let start = Instant::now();
            summaries[side] = Some(run_one(&options.commands[side], &folder.join(name))?);
            wall[side] = start.elapsed().as_secs_f64() * 1e9;
        }
        walls.0.push(wall[0]);
        walls.1.push(wall[1]);
        let [Some(a), Some(b)] = summaries else { return Err("a pair lost a run".to_owned()) };
        eprintln!("timing: pair {}/{}: {} µs a step against {} µs", pair + 1, options.runs, step_us(&a), step_us(&b));
        before.push(a);
        after.push(b);
    }
    if options.save.is_some() {
        eprintln!("timing: the runs are in {} (a-N.json and b-N.json)", folder.display());
    }
    Ok((before, after, walls))
}

fn step_us(run: &TrainingSummary) -> String {
    #[allow(clippy::cast_precision_loss)]
    let mean = if run.total_steps == 0 { 0.0 } else { run.total_ns as f64 / run.total_steps as f64 / 1e3 };
    format!("{mean:.2}")
}

/// Runs `command` through the shell, its summary written to `path` (through the placeholder) or read from
/// its standard output and saved there.
fn run_one(command: &str, path: &Path) -> Result<TrainingSummary, String> {
    let placeholder = command.contains(PLACEHOLDER);
    let line = command.replace(PLACEHOLDER, &path.display().to_string());
    let mut shell = if cfg!(windows) { Command::new("cmd") } else { Command::new("sh") };
    shell.arg(if cfg!(windows) { "/C" } else { "-c" }).arg(&line).stdin(Stdio::null()).stderr(Stdio::inherit());
    let output = shell.output().map_err(|error| format!("cannot run `{line}`: {error}"))?;
    if !output.status.success() {
        return Err(format!("`{line}` failed: {}", output.status));
    }
    if !placeholder {
        std::fs::write(path, &output.stdout).map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    }
    let path = path.to_str().ok_or_else(|| format!("{} is not UTF-8", path.display()))?;
    load(path).map_err(|error| {
        let source = if placeholder { "the file it wrote" } else { "its standard output" };
        format!("`{line}`: {source} is not a summary ({error})")
    })
}
