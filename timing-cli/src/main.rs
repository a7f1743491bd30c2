//! `timing`: a saved run (`summary.json`, as `--out DIR` of the optimizer example or `serde_json` writes
//! it) shown as the report or as one HTML page, and runs compared with a verdict for each phase that tells
//! noise from change.
//!
//! ```text
//! timing show RUN.json
//! timing html RUN.json [-o PAGE.html] [--title TITLE]
//! timing diff BEFORE.json AFTER.json [--noise PCT] [--fail-above PCT] [--markdown]
//! timing diff A1.json A2.json .. -- B1.json B2.json .. [--paired] [--noise PCT] [--fail-above PCT] [--markdown]
//! timing ab 'COMMAND A' 'COMMAND B' [--runs N] [--warmup N] [--save DIR] [--noise PCT] [--fail-above PCT] [--markdown]
//! ```
//!
//! `diff` with one run a side calls a change real only beyond the run-to-run noise of a shared machine
//! (15% by default, `--noise`), and says so; with several runs a side (separated by `--`), its intervals
//! come from the spread between the runs (`--paired` when the i-th runs of the two sides were made
//! together). `ab` runs two commands in turn, A B then B A, `--runs` times each (8 by default) after
//! `--warmup` runs each (1), and compares them in pairs; each command is run by the shell and writes its
//! summary to the file `{summary}` stands for in it, or prints it as JSON to standard output (the
//! optimizer example's `--json`). `--save DIR` keeps the summaries there (`a-1.json`, `b-1.json`, ..).
//! `--markdown` prints the comparison as a table for a pull request, `--json` as JSON.
//!
//! `html` writes the page to `PAGE.html`, by default beside the summary with the extension `.html`
//! (`run.json` gives `run.html`), titled by default with the summary's file name.
//!
//! Exit status: 0; 1 when `--fail-above PCT` is given and the step or some phase got slower by more than
//! PCT percent with 95% confidence; 2 for a usage error or a file that cannot be read as a summary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use timing_runtime::{CompareSettings, Comparison, TrainingSummary, Verdict};

mod ab;

const USAGE: &str = "usage:\n  timing show RUN.json\n  timing html RUN.json [-o PAGE.html] [--title TITLE]\n  \
                     timing diff BEFORE.json AFTER.json [OPTIONS]\n  \
                     timing diff A1.json A2.json .. -- B1.json B2.json .. [--paired] [OPTIONS]\n  \
                     timing ab 'COMMAND A' 'COMMAND B' [--runs N] [--warmup N] [--save DIR] [OPTIONS]\n\
                     options: [--noise PCT] [--fail-above PCT] [--markdown | --json]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("timing: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<u8, String> {
    match args.first().map(String::as_str) {
        Some("show") => {
            let [path] = &args[1..] else { return Err(format!("`show` takes one file\n{USAGE}")) };
            out(&load(path)?.to_string());
            Ok(0)
        }
        Some("html") => html(&args[1..]),
        Some("diff") => diff(&args[1..]),
        Some("ab") => ab::ab(&args[1..]),
        Some("--help" | "-h" | "help") => {
            out(&format!("{USAGE}\n"));
            Ok(0)
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    }
}

fn html(args: &[String]) -> Result<u8, String> {
    let (mut file, mut page, mut title) = (None, None, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().cloned().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match arg.as_str() {
            "-o" | "--output" => page = Some(PathBuf::from(value(arg)?)),
            "--title" => title = Some(value("--title")?),
            flag if flag.starts_with('-') => return Err(format!("unknown option `{flag}`\n{USAGE}")),
            _ if file.is_some() => return Err(format!("`html` takes one file\n{USAGE}")),
            path => file = Some(path),
        }
    }
    let Some(path) = file else { return Err(format!("`html` takes one file\n{USAGE}")) };
    let run = load(path)?;
    let page = page.unwrap_or_else(|| Path::new(path).with_extension("html"));
    if same_file(&page, Path::new(path)) {
        return Err(format!("the page would overwrite the summary {path}: give another name with -o"));
    }
    let title = title.unwrap_or_else(|| {
        Path::new(path).file_name().map_or_else(|| path.to_owned(), |name| name.to_string_lossy().into_owned())
    });
    run.write_html(&page, &title).map_err(|error| format!("cannot write {}: {error}", page.display()))?;
    eprintln!("timing: wrote {}", page.display());
    Ok(0)
}

/// What `diff` and `ab` share: the noise level, the limit of `--fail-above`, the output's form.
#[derive(Default)]
struct Verdicts {
    noise: Option<f64>,
    fail_above: Option<f64>,
    markdown: bool,
    json: bool,
}

impl Verdicts {
    /// Takes `arg` (and its value from `args`) if it is one of the shared options; says whether it was.
    fn take<'a>(&mut self, arg: &str, args: &mut impl Iterator<Item = &'a String>) -> Result<bool, String> {
        let mut percent = |flag: &str| -> Result<f64, String> {
            let value = args.next().ok_or(format!("{flag} needs a percentage"))?;
            value
                .parse::<f64>()
                .ok()
                .filter(|pct| pct.is_finite() && *pct >= 0.0)
                .ok_or(format!("{flag} takes a percentage of 0 or more, not `{value}`"))
        };
        match arg {
            "--noise" => self.noise = Some(percent("--noise")?),
            "--fail-above" => self.fail_above = Some(percent("--fail-above")?),
            "--markdown" => self.markdown = true,
            "--json" => self.json = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Compares the runs, prints the comparison and returns the exit status.
    fn report(
        &self,
        before: &[TrainingSummary],
        after: &[TrainingSummary],
        paired: bool,
        walls: Option<ab::Walls>,
    ) -> u8 {
        let settings = CompareSettings { noise_pct: self.noise, paired };
        let mut comparison = Comparison::of_runs(before, after, &settings);
        if let Some((before_ns, after_ns)) = walls {
            comparison = comparison.with_process_wall(&before_ns, &after_ns);
        }
        out(&if self.json {
            serde_json::to_string_pretty(&comparison).unwrap_or_default() + "\n"
        } else if self.markdown {
            comparison.to_markdown()
        } else {
            comparison.to_string()
        });
        let Some(limit) = self.fail_above else { return 0 };
        // Slower beyond the noise level (the verdict) and by more than the limit, with the confidence of the
        // comparison's intervals.
        let slower: Vec<String> = std::iter::once(&comparison.step)
            .chain(&comparison.phases)
            .filter(|change| change.verdict == Verdict::Slower)
            .filter_map(|change| {
                let (low, median, _) = change.median_change_pct?;
                (low > limit).then(|| format!("{} {median:+.1}% (at least {low:+.1}%)", change.name))
            })
            .collect();
        if slower.is_empty() {
            return 0;
        }
        eprintln!("timing: slower by more than {limit}% with 95% confidence: {}", slower.join(", "));
        1
    }
}

fn diff(args: &[String]) -> Result<u8, String> {
    let (mut files, mut separator, mut paired, mut verdicts) = (Vec::new(), None, false, Verdicts::default());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if verdicts.take(arg, &mut args)? {
            continue;
        }
        match arg.as_str() {
            "--paired" => paired = true,
            "--" if separator.is_none() => separator = Some(files.len()),
            "--" => return Err(format!("`diff` takes one `--` between the two sides\n{USAGE}")),
            flag if flag.starts_with("--") => return Err(format!("unknown option `{flag}`\n{USAGE}")),
            file => files.push(file),
        }
    }
    let (before_paths, after_paths) = match separator {
        Some(at) => files.split_at(at),
        None if files.len() == 2 => files.split_at(1),
        None => return Err(format!("`diff` takes two files, or runs on each side of `--`\n{USAGE}")),
    };
    if before_paths.is_empty() || after_paths.is_empty() {
        return Err(format!("`diff` needs at least one run on each side of `--`\n{USAGE}"));
    }
    if paired && before_paths.len() != after_paths.len() {
        return Err(format!(
            "--paired needs as many runs on each side ({} and {})",
            before_paths.len(),
            after_paths.len()
        ));
    }
    let load_all = |paths: &[&str]| paths.iter().map(|path| load(path)).collect::<Result<Vec<_>, String>>();
    let (before, after) = (load_all(before_paths)?, load_all(after_paths)?);
    for (path, run) in before_paths.iter().chain(after_paths).zip(before.iter().chain(&after)) {
        if run.step_spread.is_empty() && run.total_steps > 0 {
            eprintln!(
                "timing: {path} has no per-step distributions (saved before timing-runtime 0.1.0 kept them): \
                 its changes get no verdict between single runs"
            );
        }
    }
    Ok(verdicts.report(&before, &after, paired, None))
}

/// Writes `text` to standard output; a reader that went away (`timing diff .. | head`) is not an error.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A saved summary, or an error that names the file and, for bad JSON, the line and column.
fn load(path: &str) -> Result<TrainingSummary, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read {path}: {error}"))?;
    let run: TrainingSummary = serde_json::from_str(&text).map_err(|error| {
        let what = match error.classify() {
            serde_json::error::Category::Eof => "it ends too early (truncated?)",
            serde_json::error::Category::Syntax => "it is not JSON",
            serde_json::error::Category::Data => "it is JSON but not a timing summary",
            serde_json::error::Category::Io => "it could not be read",
        };
        // serde_json's message ends with the line and column.
        format!("{path}: {what}: {error}")
    })?;
    if newer(&run.version, env!("CARGO_PKG_VERSION")) {
        return Err(format!(
            "{path} was written by timing-runtime {}, newer than this timing ({}): update timing-cli",
            run.version,
            env!("CARGO_PKG_VERSION")
        ));
    }
    Ok(run)
}

/// Whether `page` names the existing file `summary`, however either is written (`./run.json`, a link).
fn same_file(page: &Path, summary: &Path) -> bool {
    let resolved = |path: &Path| -> Option<PathBuf> {
        let parent = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(parent.canonicalize().ok()?.join(path.file_name()?))
    };
    let summary = summary.canonicalize().ok();
    summary.is_some() && (page.canonicalize().ok() == summary || resolved(page) == summary)
}

/// Whether version `written` is newer than `ours` (both `major.minor.patch`; an empty one, from before
/// summaries carried their version, is older).
fn newer(written: &str, ours: &str) -> bool {
    let parts = |version: &str| -> Vec<u64> { version.split('.').map(|part| part.parse().unwrap_or(0)).collect() };
    !written.is_empty() && parts(written) > parts(ours)
}
