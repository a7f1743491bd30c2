#!/usr/bin/env bash
# Does `timing ab` tell change from noise between separate processes on this machine? Twenty comparisons of
# one build against itself, and twenty against the same build with one phase made 10% slower, each with
# `timing ab`'s default settings (8 pairs of runs, A B then B A, after a warm-up run of each), of the
# `phases` example (three phases of fixed work, 20,000 steps a run). Counts the comparisons of the same build
# that called anything a real change (the step, a phase or a span), and those of the slower build that
# flagged the slower phase, and those that flagged no unchanged phase.
#
#   bash benches/diff-experiment.sh [COMPARISONS] [RESULTS_FILE]
#
# Passes (exit 0) when at most 1 of 20 same-build comparisons calls anything real, and at least 19 of 20
# flag the slower phase with no unchanged phase flagged; the figures go to RESULTS_FILE
# (benches/results/diff-experiment.txt by default) and to standard output.
set -euo pipefail
cd "$(dirname "$0")/.."
comparisons="${1:-20}"
results="${2:-benches/results/diff-experiment.txt}"

cargo build --release -q -p timing-cli
cargo build --release -q -p timing-benches --example phases
timing=target/release/timing
phases=target/release/examples/phases
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

same_false=0
slower_found=0
slower_clean=0
log="$work/log"
for i in $(seq 1 "$comparisons"); do
    "$timing" ab "$phases" "$phases" --json >"$work/same.json" 2>>"$log"
    "$timing" ab "$phases" "$phases --slower solve 10" --json >"$work/slower.json" 2>>"$log"
    read -r same slower_ok clean detail < <(python3 - "$work/same.json" "$work/slower.json" <<'PY'
import json, sys
same = json.load(open(sys.argv[1]))
slower = json.load(open(sys.argv[2]))
rows = lambda c: [c["step"]] + c["phases"] + c["spans"]
flagged = [r["name"] for r in rows(same) if r["verdict"] in ("Slower", "Faster")]
phase = {r["name"]: r for r in slower["phases"]}
found = phase["solve"]["verdict"] == "Slower"
others = [n for n, r in phase.items() if n != "solve" and r["verdict"] != "NoChange"]
def show(r):
    c = r.get("median_change_pct")
    return "%s %+.1f%% [%+.1f, %+.1f]" % (r["name"], c[1], c[0], c[2]) if c else r["name"] + " -"
detail = "same: " + (",".join(flagged) or "none") + "; solve: " + show(phase["solve"]) + "; others flagged: " + (",".join(others) or "none")
print(1 if flagged else 0, 1 if found else 0, 0 if others else 1, detail.replace(" ", "_"))
PY
)
    same_false=$((same_false + same))
    slower_found=$((slower_found + slower_ok))
    slower_clean=$((slower_clean + clean))
    echo "comparison $i: ${detail//_/ }" | tee -a "$work/lines"
done

verdict=pass
if [ "$same_false" -gt $((comparisons / 20)) ] || [ "$slower_found" -lt $((comparisons - comparisons / 20)) ] \
    || [ "$slower_clean" -lt $((comparisons - comparisons / 20)) ]; then
    verdict=fail
fi
{
    echo "timing ab, default settings, $comparisons comparisons each ($(date -u +%Y-%m-%d), $(nproc) cores):"
    echo "  same build: $same_false of $comparisons called something a real change"
    echo "  solve phase 10% slower: flagged in $slower_found of $comparisons; no unchanged phase flagged in $slower_clean of $comparisons"
    echo "  $verdict"
    echo
    cat "$work/lines"
} | tee "$results"
[ "$verdict" = pass ]
