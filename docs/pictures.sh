#!/usr/bin/env bash
# Makes the README's pictures from a real run of the example: its report, its flamegraph and a window of its
# trace. Needs python3 and rsvg-convert (Debian: librsvg2-bin).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/pictures
mkdir -p "$out" docs/img
cargo run --release --example optimizer -- --steps 2000 --threads 2 --out "$out" > "$out/report.txt"
python3 docs/text_svg.py "$out/report.txt" > "$out/report.svg"
python3 docs/trace_svg.py "$out/trace.json" > "$out/trace.svg"
for name in report flamegraph trace; do
    rsvg-convert -w 900 "$out/$name.svg" -o "docs/img/$name.png"
done
ls -l docs/img
