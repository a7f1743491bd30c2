#!/usr/bin/env bash
# Does the report's instrumentation row follow what timing costs in fast and in slow processes alike? On
# these VMs a whole process runs fast or slow (the same binary pinned to one core: 35 or 63 ms), and each
# process calibrates the cost of a timed call for itself. Comparing two processes cannot tell what timing
# cost either, so each process of the real-shaped workload (`benches/memo.rs --against-bare`) measures it
# itself: it runs the same code uninstrumented and timed, 100 steps of each in turn, and the median over
# the rounds of timed over bare time, less one, times the bare time, is what timing cost it. That is set
# beside what its report gives as its instrumentation. The processes are grouped by speed (bare time per
# step; split at the widest gap between sorted speeds when it is over 15%, else one group).
#
#   bash benches/calibration-states.sh [PROCESSES] [STEPS] [RESULTS_FILE]
#
# Pinned to one core. Passes (exit 0) when the median of reported / measured is within 0.75 to 1.25 in
# every group of at least 3 processes. The figures go to RESULTS_FILE
# (benches/results/calibration-states.txt by default).
set -euo pipefail
cd "$(dirname "$0")/.."
processes="${1:-24}"
steps="${2:-4000}"
results="${3:-benches/results/calibration-states.txt}"

cargo build --release -q -p timing-benches --example memo
memo=target/release/examples/memo
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pin=(taskset -c 1)
command -v taskset >/dev/null || pin=()

for i in $(seq 1 "$processes"); do
    "${pin[@]}" "$memo" --steps "$steps" --against-bare --json >"$work/summary.json" 2>"$work/bare.txt"
    echo "$(tail -1 "$work/bare.txt") $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["phase_breakdown"]["instrumentation_ns"])' "$work/summary.json")" >>"$work/runs"
done

python3 - "$work/runs" "$processes" "$steps" "$results" <<'PY'
import statistics, sys

path, processes, steps, results = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
runs = []
for line in open(path):
    # bare_ns B timed_ns T median_ratio R REPORTED
    parts = line.split()
    bare, ratio, reported = float(parts[1]), float(parts[5]), float(parts[6])
    runs.append({"speed": bare / steps / 1e3, "measured": (ratio - 1.0) * bare / 1e6, "reported": reported / 1e6})
runs.sort(key=lambda run: run["speed"])
gaps = [(b["speed"] / a["speed"], index) for index, (a, b) in enumerate(zip(runs, runs[1:]), start=1)]
widest, index = max(gaps, default=(1.0, 0))
groups = {"all": runs} if widest < 1.15 else {"fast": runs[:index], "slow": runs[index:]}
lines = [f"Instrumentation reported against measured in the same process, by process speed: {processes} "
         f"processes of {steps} steps, pinned to one core (`benches/memo.rs --against-bare`).", "",
         "| group | processes | bare µs a step (median) | measured ms (median) | reported ms (median) | reported / measured, median (range) |",
         "|---|---|---|---|---|---|"]
ok = True
for name, group in groups.items():
    ratios = [run["reported"] / run["measured"] for run in group if run["measured"] > 0]
    median = statistics.median(ratios) if ratios else float("nan")
    enough = len(group) >= 3
    if enough and not 0.75 <= median <= 1.25:
        ok = False
    lines.append(f"| {name} | {len(group)} | {statistics.median(run['speed'] for run in group):.1f} | "
                 f"{statistics.median(run['measured'] for run in group):.1f} | "
                 f"{statistics.median(run['reported'] for run in group):.1f} | "
                 f"{median:.2f} ({min(ratios, default=float('nan')):.2f} to {max(ratios, default=float('nan')):.2f})"
                 f"{'' if enough else ', too few processes'} |")
lines.append("")
lines.append("each process (bare µs a step, measured ms, reported ms): " + "; ".join(
    f"{run['speed']:.1f} {run['measured']:.1f} {run['reported']:.1f}" for run in runs))
text = "\n".join(lines) + "\n"
print(text, end="")
open(results, "w").write(text)
sys.exit(0 if ok else 1)
PY
