#!/usr/bin/env bash
# Are the report's phase shares those of the program? The real-shaped workload (`benches/memo.rs`: a
# recursive, memoized `area` in the `error` phase, which calls `closeness` and `disk` of the `regions`
# phase from inside its recursion) is run instrumented, and its report's phase shares are set beside a
# sampling profile of the UNINSTRUMENTED build of the same code: `perf record` (Debian's `linux-perf`,
# cpu-clock samples with DWARF call stacks), each sample's stack expanded through inlined calls (in the
# uninstrumented build the phase functions are inlined into `area`, so only the debug information's
# inline records tell them apart), and charged to the innermost phase function on it, as the runtime
# charges time to the innermost timed call's phase. A sample inside `step` but in no phase function is the
# step's own ("unphased"); a sample outside `step` is not in the shares. The report's shares are taken of
# the step time less the instrumentation's row, which the uninstrumented program does not have.
#
#   bash benches/phase-shares.sh [ROUNDS] [STEPS] [RESULTS_FILE]
#
# Each round runs the instrumented build once and profiles the uninstrumented one once, in turn (so that
# a slower stretch of the machine falls on both); the medians over the rounds are compared. Passes (exit
# 0) when every phase's median share is within 1 point of the profile's. The figures go to RESULTS_FILE
# (benches/results/phase-shares.txt by default) and to standard output.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
steps="${2:-4000}"
results="${3:-benches/results/phase-shares.txt}"

command -v perf >/dev/null || { echo "perf is not installed (Debian: apt-get install linux-perf)" >&2; exit 2; }
# Line tables for the inline records; the code is what a release build makes either way.
export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
target=target/phase-shares
CARGO_TARGET_DIR="$target/off" cargo build --release -q -p timing-benches --example memo --no-default-features
CARGO_TARGET_DIR="$target/on" cargo build --release -q -p timing-benches --example memo
off="$target/off/release/examples/memo"
on="$target/on/release/examples/memo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for round in $(seq 1 "$rounds"); do
    "$on" --steps "$steps" --json >"$work/report-$round.json"
    perf record -q -e cpu-clock -F 4000 --call-graph dwarf,16384 -o "$work/perf.data" -- \
        "$off" --steps "$steps" >/dev/null 2>"$work/perf-record.log"
    perf script -i "$work/perf.data" -F ip,sym,srcline --inline 2>/dev/null >"$work/stacks-$round.txt"
    rm -f "$work/perf.data"
done

python3 - "$work" "$rounds" "$steps" "$results" <<'PY'
import json, os, re, statistics, sys

work, rounds, steps, results = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
# The phase of each function of the workload, as `memo_scene.rs` annotates them; `step` is the step's
# own code, `train` the batch around the steps.
PHASE = {"new": "regions", "disk": "regions", "closeness": "regions", "area": "error", "error": "error",
         "update": "update", "step": "unphased"}

# Which function of `memo_scene.rs` each of its lines belongs to: from one `fn` to the next. A profile's
# frames are told apart by their source lines, not their names: perf names a call site inside an inlined
# function by the function it was inlined into, but gives the inlined function's own line.
FUNCTION_OF_LINE = {}
with open("benches/memo_scene.rs") as source:
    current = None
    for number, text in enumerate(source, start=1):
        match = re.search(r"\bfn (\w+)", text)
        if match:
            current = match.group(1)
        FUNCTION_OF_LINE[number] = current

def profile(path):
    """Samples by phase: each sample's innermost workload function in a phase (or `step`) decides."""
    counts = {}
    frames = []

    def finish():
        for name in frames:
            if name in PHASE:
                counts[PHASE[name]] = counts.get(PHASE[name], 0) + 1
                return

    with open(path, errors="replace") as stacks:
        lines = stacks.read().split("\n")
    index = 0
    while index < len(lines):
        if not lines[index].strip():
            finish()
            frames = []
            index += 1
            continue
        # A frame: "ADDRESS NAME", then its source line ("file.rs:LINE", "(inlined)" after it when it was).
        source = lines[index + 1].strip() if index + 1 < len(lines) else ""
        index += 2
        match = re.match(r"memo_scene\.rs:(\d+)", source)
        if match:
            frames.append(FUNCTION_OF_LINE.get(int(match.group(1))))
    finish()
    return counts

table = {}
for round in range(1, rounds + 1):
    counts = profile(os.path.join(work, f"stacks-{round}.txt"))
    in_steps = sum(counts.values())
    report = json.load(open(os.path.join(work, f"report-{round}.json")))["phase_breakdown"]
    # The report's shares of step time, without the instrumentation's row.
    rest = 100.0 - report["instrumentation_pct"]
    shares = {phase["phase"]: phase["pct"] for phase in report["phases"]}
    shares["unphased"] = report["unphased_pct"]
    for phase in ["error", "regions", "update", "unphased"]:
        row = table.setdefault(phase, {"report": [], "profile": [], "samples": []})
        row["report"].append(100.0 * shares.get(phase, 0.0) / rest)
        row["profile"].append(100.0 * counts.get(phase, 0) / max(in_steps, 1))
    table.setdefault("_samples", []).append(in_steps)

lines = [f"Phase shares of step time, {rounds} rounds of {steps} steps; medians (each round's in brackets).",
         f"Report: the instrumented build's breakdown, less its instrumentation row. Profile: perf cpu-clock "
         f"samples of the uninstrumented build ({statistics.median(table['_samples']):.0f} in steps a round, "
         f"median), charged to the innermost phase function through inlined frames.",
         "",
         "| phase | report % | profile % | report - profile (points) |",
         "|---|---|---|---|"]
worst = 0.0
for phase in ["error", "regions", "update", "unphased"]:
    row = table[phase]
    report, prof = statistics.median(row["report"]), statistics.median(row["profile"])
    worst = max(worst, abs(report - prof))
    each = ", ".join(f"{r:.1f}/{p:.1f}" for r, p in zip(row["report"], row["profile"]))
    lines.append(f"| {phase} | {report:.2f} | {prof:.2f} | {report - prof:+.2f} ({each}) |")
lines.append("")
lines.append(f"largest difference: {worst:.2f} points ({'within' if worst <= 1.0 else 'NOT within'} 1 point)")
text = "\n".join(lines) + "\n"
print(text, end="")
with open(results, "w") as out:
    out.write(text)
sys.exit(0 if worst <= 1.0 else 1)
PY
