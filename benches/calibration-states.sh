#!/usr/bin/env bash
# Does the report's instrumentation row follow what timing costs in fast and in slow processes alike? On
# these VMs a whole process runs fast or slow (the same binary pinned to one core: 35 or 63 ms), and each
# process calibrates the cost of a timed call for itself. The real-shaped workload (`benches/memo.rs`) is
# run RUNS times uninstrumented and RUNS times instrumented, in turn, pinned to one core; each process's
# wall time puts it in the fast or the slow group of its build (split at the widest gap between sorted
# wall times, when the gap is over 15% of the faster side; otherwise there is one group). Within each group,
# the measured cost is the median instrumented wall time less the median uninstrumented one, set beside
# the median of what the instrumented runs' reports give as their instrumentation.
#
#   bash benches/calibration-states.sh [RUNS] [STEPS] [RESULTS_FILE]
#
# Passes (exit 0) when every group with at least 3 runs of each build has reported / measured within
# 0.75 to 1.25. The figures go to RESULTS_FILE (benches/results/calibration-states.txt by default).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
steps="${2:-2000}"
results="${3:-benches/results/calibration-states.txt}"

target=target/calibration-states
CARGO_TARGET_DIR="$target/off" cargo build --release -q -p timing-benches --example memo --no-default-features
CARGO_TARGET_DIR="$target/on" cargo build --release -q -p timing-benches --example memo
off="$target/off/release/examples/memo"
on="$target/on/release/examples/memo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pin=(taskset -c 1)
command -v taskset >/dev/null || pin=()

wall() { # seconds of one run of "$@", its output to $work/out
    local start end
    start=$(date +%s.%N)
    "${pin[@]}" "$@" >"$work/out"
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

for i in $(seq 1 "$runs"); do
    if [ $((i % 2)) -eq 1 ]; then
        echo "off $(wall "$off" --steps "$steps")" >>"$work/walls"
        echo "on $(wall "$on" --steps "$steps" --json) $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["phase_breakdown"]["instrumentation_ns"])' "$work/out")" >>"$work/walls"
    else
        echo "on $(wall "$on" --steps "$steps" --json) $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["phase_breakdown"]["instrumentation_ns"])' "$work/out")" >>"$work/walls"
        echo "off $(wall "$off" --steps "$steps")" >>"$work/walls"
    fi
done

python3 - "$work/walls" "$runs" "$steps" "$results" <<'PY'
import statistics, sys

path, runs, steps, results = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
off, on = [], []
for line in open(path):
    parts = line.split()
    if parts[0] == "off":
        off.append(float(parts[1]))
    else:
        on.append((float(parts[1]), float(parts[2]) / 1e9))

def groups(values, key):
    """Fast and slow, split at the widest gap of the sorted values when it is over 15%; else one group."""
    ordered = sorted(values, key=key)
    gaps = [(key(b) / key(a), index) for index, (a, b) in enumerate(zip(ordered, ordered[1:]), start=1)]
    ratio, index = max(gaps, default=(1.0, 0))
    if ratio < 1.15:
        return {"all": ordered}
    return {"fast": ordered[:index], "slow": ordered[index:]}

off_groups = groups(off, lambda wall: wall)
on_groups = groups(on, lambda run: run[0])
lines = [f"Instrumentation reported against measured, by process speed: {runs} runs of each build, "
         f"{steps} steps, pinned to one core, in turn.", "",
         "| group | off runs | off median s | on runs | on median s | measured on - off ms | reported ms (median) | reported / measured |",
         "|---|---|---|---|---|---|---|---|"]
ok = True
for name in ["fast", "slow", "all"]:
    if name not in off_groups or name not in on_groups:
        continue
    offs, ons = off_groups[name], on_groups[name]
    measured = statistics.median(run[0] for run in ons) - statistics.median(offs)
    reported = statistics.median(run[1] for run in ons)
    ratio = reported / measured if measured > 0 else float("nan")
    enough = len(offs) >= 3 and len(ons) >= 3
    if enough and not 0.75 <= ratio <= 1.25:
        ok = False
    lines.append(f"| {name} | {len(offs)} | {statistics.median(offs):.3f} | {len(ons)} | "
                 f"{statistics.median(run[0] for run in ons):.3f} | {measured * 1e3:.1f} | {reported * 1e3:.1f} | "
                 f"{ratio:.2f}{'' if enough else ' (too few runs)'} |")
if set(off_groups) != set(on_groups):
    lines.append("")
    lines.append(f"the builds split differently: off {sorted(off_groups)}, on {sorted(on_groups)}")
lines.append("")
lines.append("all walls (s): off " + " ".join(f"{w:.3f}" for w in off))
lines.append("on " + " ".join(f"{w:.3f}/{r * 1e3:.1f}ms" for w, r in on))
text = "\n".join(lines) + "\n"
print(text, end="")
open(results, "w").write(text)
sys.exit(0 if ok else 1)
PY
