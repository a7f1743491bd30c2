#!/usr/bin/env bash
# The clean build a user waits for: a small crate of 200 instrumented functions, built from nothing with
# each framework in turn (timing's #[timed]; fastrace's #[trace]; tracing's #[instrument] with
# tracing-subscriber), in release, in debug, and with `cargo check`. Each build has a target directory of
# its own, made empty first; the registry's sources are fetched once, before any is timed.
#
#   bash benches/compile-time.sh [ROUNDS]      # ROUNDS builds of each, the median kept (default 1)
#
# Prints one table; `benches/results/compile-time.txt` keeps the latest. Wall time on this machine's two
# cores, with nothing else building: compare rows of one run, not figures across machines.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
rounds=${1:-1}
work="$root/target/compile-time"
rm -rf "$work"
mkdir -p "$work"

# The instrumented functions: a chain of 200 small ones, each calling the next, as annotated code is.
functions() {
    local attribute=$1
    for index in $(seq 0 199); do
        printf '%s\npub fn f%d(x: u64) -> u64 {\n    let y = x.wrapping_mul(6364136223846793005).wrapping_add(%d);\n' "$attribute" "$index" "$index"
        if [ "$index" -lt 199 ]; then
            printf '    f%d(y >> 1)\n}\n\n' $((index + 1))
        else
            printf '    y\n}\n\n'
        fi
    done
}

make_crate() {
    local name=$1 dependencies=$2 use_line=$3 attribute=$4 main_body=$5
    local dir="$work/$name"
    mkdir -p "$dir/src"
    cat >"$dir/Cargo.toml" <<EOF
[package]
name = "compile-$name"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$dependencies

[workspace]
EOF
    {
        echo "$use_line"
        echo
        functions "$attribute"
        echo "fn main() {"
        echo "$main_body"
        echo "}"
    } >"$dir/src/main.rs"
}

make_crate timing "timing-runtime = { path = \"$root/timing-runtime\" }" \
    "use timing_runtime::timed;" "#[timed]" \
    '    println!("{} {}", f0(1), timing_runtime::summary().spans.len());'
make_crate fastrace 'fastrace = { version = "0.7", features = ["enable"] }' \
    "use fastrace::trace;" "#[trace]" \
    '    println!("{}", f0(1));'
make_crate tracing $'tracing = "0.1"\ntracing-subscriber = "0.3"' \
    "use tracing::instrument;" "#[instrument]" \
    '    tracing_subscriber::fmt::init();
    println!("{}", f0(1));'

frameworks=(timing fastrace tracing)
for name in "${frameworks[@]}"; do
    (cd "$work/$name" && cargo fetch --quiet)
done

# Seconds of one clean build of crate $1 with cargo arguments $2.
clean_build() {
    local name=$1 args=$2 target="$work/target-$1"
    rm -rf "$target"
    local start end
    start=$(date +%s.%N)
    (cd "$work/$name" && CARGO_TARGET_DIR="$target" cargo $args --quiet --offline >/dev/null 2>&1)
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

median() { sort -n | awk '{ values[NR] = $1 } END { print values[int((NR + 1) / 2)] }'; }

modes=("build --release" "build" "check")
printf '| framework | clean release build s | clean debug build s | clean check s | crates compiled |\n'
printf '|---|---|---|---|---|\n'
for name in "${frameworks[@]}"; do
    row="| $name"
    for mode in "${modes[@]}"; do
        seconds=$(for _ in $(seq "$rounds"); do clean_build "$name" "$mode"; done | median)
        row="$row | $(printf '%.1f' "$seconds")"
    done
    crates=$(cd "$work/$name" && cargo tree --offline --edges normal,build --prefix none 2>/dev/null | sed 's/ (\*)//' | sort -u | wc -l)
    printf '%s | %s |\n' "$row" "$crates"
done
