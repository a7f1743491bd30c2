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
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use timing_runtime::{CompareSettings, Comparison, TrainingSummary, Verdict};

mod ab;
mod top;

/// The arguments of every command, with `--help` for each and `--version`.
fn cli() -> Command {
    let run =
        || Arg::new("run").value_name("RUN.json").required(true).help("A saved summary (TrainingSummary as JSON)");
    let verdicts = [
        Arg::new("noise")
            .long("noise")
            .value_name("PCT")
            .value_parser(percent)
            .help("Run-to-run noise of single runs, in percent (15 by default)"),
        Arg::new("fail-above")
            .long("fail-above")
            .value_name("PCT")
            .value_parser(percent)
            .help("Exit with status 1 when the step or a phase got slower by more than PCT% with 95% confidence"),
        Arg::new("markdown").long("markdown").action(ArgAction::SetTrue).help("Print a Markdown table"),
        Arg::new("json").long("json").action(ArgAction::SetTrue).conflicts_with("markdown").help("Print JSON"),
    ];
    Command::new("timing")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Show a saved run, watch a live one, and compare runs telling noise from change")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(Command::new("show").about("Print a saved run as the report").arg(run()))
        .subcommand(
            Command::new("html")
                .about("Write a saved run's page (by default beside it, RUN.html)")
                .arg(run())
                .arg(
                    Arg::new("output")
                        .short('o')
                        .long("output")
                        .value_name("PAGE.html")
                        .help("Where to write the page"),
                )
                .arg(Arg::new("title").long("title").value_name("TITLE").help("The page's title (the file's name)")),
        )
        .subcommand(
            Command::new("top")
                .about("Watch a live run in the terminal (or show a saved one the same way); q quits")
                .arg(
                    Arg::new("source")
                        .value_name("URL | RUN.json")
                        .required(true)
                        .help("A program's `serve` address (http://127.0.0.1:9185/) or a saved summary"),
                )
                .arg(
                    Arg::new("interval")
                        .long("interval")
                        .value_name("SECONDS")
                        .value_parser(seconds)
                        .default_value("1")
                        .help("Time between updates of a live run"),
                ),
        )
        .subcommand(
            Command::new("diff")
                .about("Compare two runs (BEFORE AFTER), or several a side: A1 A2 .. -- B1 B2 ..")
                .override_usage(
                    "timing diff [OPTIONS] BEFORE.json AFTER.json\n       \
                     timing diff [OPTIONS] A1.json A2.json .. -- B1.json B2.json ..",
                )
                .arg(Arg::new("before").value_name("RUN.json").num_args(0..).help("The runs before (or BEFORE AFTER)"))
                // The `--` between the sides is turned into this before parsing (see `main`).
                .arg(Arg::new("after").long(AFTER).num_args(1..).value_name("RUN.json").hide(true))
                .arg(
                    Arg::new("paired")
                        .long("paired")
                        .action(ArgAction::SetTrue)
                        .help("The i-th runs of the two sides were made together"),
                )
                .args(verdicts.clone()),
        )
        .subcommand(
            Command::new("ab")
                .about("Run two commands in turn (A B, then B A) and compare their runs in pairs")
                .arg(
                    Arg::new("commands")
                        .value_name("COMMAND")
                        .num_args(0..)
                        .help("Two shell commands, each one argument; `{summary}` in one is the file it writes"),
                )
                .arg(
                    Arg::new("runs")
                        .long("runs")
                        .value_name("N")
                        .value_parser(|value: &str| count(value, "--runs", 2))
                        .help(format!("Runs of each command, in pairs [default: {}]", ab::DEFAULT_RUNS)),
                )
                .arg(
                    Arg::new("warmup")
                        .long("warmup")
                        .value_name("N")
                        .value_parser(|value: &str| count(value, "--warmup", 0))
                        .default_value("1")
                        .help("Runs of each before those compared"),
                )
                .arg(Arg::new("save").long("save").value_name("DIR").help("Keep the summaries there"))
                .args(verdicts),
        )
}

/// The hidden option `--` becomes in `diff`'s arguments: what follows it is the second side.
const AFTER: &str = "after-side";

fn percent(value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|pct| pct.is_finite() && *pct >= 0.0)
        .ok_or(format!("a percentage of 0 or more, not `{value}`"))
}

fn seconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && (0.05..=3600.0).contains(seconds))
        .map(Duration::from_secs_f64)
        .ok_or(format!("seconds from 0.05 to 3600, not `{value}`"))
}

fn count(value: &str, flag: &str, least: usize) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|count| *count >= least)
        .ok_or(format!("{flag} takes a whole number of {least} or more, not `{value}`"))
}

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `diff A1 A2 -- B1 B2 --paired`: the `--` splits the sides and options may follow, which a parser's
    // own `--` (the end of options) would not allow.
    if args.get(1).is_some_and(|command| command == "diff") {
        if let Some(at) = args.iter().position(|arg| arg == "--") {
            args[at] = format!("--{AFTER}").into();
        }
    }
    let matches = cli().get_matches_from(args);
    match run(&matches) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("timing: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(matches: &ArgMatches) -> Result<u8, String> {
    match matches.subcommand() {
        Some(("show", args)) => {
            out(&load(text(args, "run"))?.to_string());
            Ok(0)
        }
        Some(("html", args)) => html(args),
        Some(("top", args)) => {
            let interval = args.get_one::<Duration>("interval").copied().unwrap_or(Duration::from_secs(1));
            top::top(text(args, "source"), interval)
        }
        Some(("diff", args)) => diff(args),
        Some(("ab", args)) => ab::ab(args),
        _ => Err("no command: try --help".to_owned()),
    }
}

/// A required argument's value (clap has checked it is there).
fn text<'a>(args: &'a ArgMatches, name: &str) -> &'a str {
    args.get_one::<String>(name).map_or("", String::as_str)
}

/// A list argument's values, none if absent.
fn texts<'a>(args: &'a ArgMatches, name: &str) -> Vec<&'a str> {
    args.get_many::<String>(name).map(|values| values.map(String::as_str).collect()).unwrap_or_default()
}

fn html(args: &ArgMatches) -> Result<u8, String> {
    let path = text(args, "run");
    let run = load(path)?;
    let page = args.get_one::<String>("output").map_or_else(|| Path::new(path).with_extension("html"), PathBuf::from);
    if same_file(&page, Path::new(path)) {
        return Err(format!("the page would overwrite the summary {path}: give another name with -o"));
    }
    let title = args.get_one::<String>("title").cloned().unwrap_or_else(|| {
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
    fn from(args: &ArgMatches) -> Self {
        Verdicts {
            noise: args.get_one::<f64>("noise").copied(),
            fail_above: args.get_one::<f64>("fail-above").copied(),
            markdown: args.get_flag("markdown"),
            json: args.get_flag("json"),
        }
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

fn diff(args: &ArgMatches) -> Result<u8, String> {
    let (paired, verdicts) = (args.get_flag("paired"), Verdicts::from(args));
    let (files, after) = (texts(args, "before"), texts(args, "after"));
    let (before_paths, after_paths) = match (files.len(), args.contains_id("after")) {
        (_, true) => (&files[..], &after[..]),
        (2, false) => files.split_at(1),
        _ => return Err("`diff` takes two files, or runs on each side of `--` (see --help)".to_owned()),
    };
    if before_paths.is_empty() || after_paths.is_empty() {
        return Err("`diff` needs at least one run on each side of `--`".to_owned());
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
