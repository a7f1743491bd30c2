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

# The run's page (report.html), from a longer run in batches of 250 steps so that its chart over the run
# has points to draw, as headless Chromium (Debian: chromium) shows its top part.
cargo run --release --example optimizer -- --steps 20000 --batch 250 --out "$out/page" > /dev/null
profile=$(mktemp -d)
timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
    --hide-scrollbars --window-size=1100,1750 --screenshot="$PWD/docs/img/page.png" "file://$PWD/$out/page/report.html"
rm -rf "$profile"
ls -l docs/img/page.png

# The live page (`--serve`) of a run in progress, 3 s into it, as headless Chromium shows its top part.
cargo build --release --example optimizer
target/release/examples/optimizer --steps 100000000 --batch 500 --json --serve 127.0.0.1:9187 > /dev/null 2>&1 &
optimizer=$!
trap 'kill "$optimizer" 2>/dev/null || true' EXIT
sleep 3
profile=$(mktemp -d)
timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
    --hide-scrollbars --window-size=1100,1750 --screenshot="$PWD/docs/img/live.png" "http://127.0.0.1:9187/"
rm -rf "$profile"
kill "$optimizer"
ls -l docs/img/live.png
