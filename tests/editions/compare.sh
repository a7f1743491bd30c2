#!/usr/bin/env bash
# For each edition crate: the same output with the `timing` feature on and off, and the same clippy
# diagnostics (pedantic, and restriction lints users set) over the lint shapes, built under
# `--cfg timing_lint_shapes`. Run by `.ci/run`.
set -euo pipefail
cd "$(dirname "$0")/../.."

lints=(-W clippy::pedantic -W clippy::panic -W clippy::print_stdout -W clippy::default_numeric_fallback
    -W clippy::implicit_return -W clippy::unused_async)
# `file:line:col: level: message`, one per diagnostic of the crate's own code, sorted. Clippy's exit status
# is not the point (the shapes have a deny-by-default lint on purpose), its diagnostics are.
diagnostics() {
    { cargo clippy -q -p "$1" --message-format=short "${@:2}" -- --cfg timing_lint_shapes "${lints[@]}" 2>&1 || true; } \
        | { grep -E '^tests/editions/[^ ]+:[0-9]+:[0-9]+: ' || true; } | sort
}

status=0
for edition in 2015 2018 2021 2024; do
    crate="edition-$edition"
    on=$(cargo run -q -p "$crate")
    off=$(cargo run -q -p "$crate" --no-default-features)
    if [ "$on" != "$off" ]; then
        echo "$crate: output differs with timing on (<) and off (>):"
        diff <(echo "$on") <(echo "$off") || true
        status=1
    fi
    on=$(diagnostics "$crate")
    off=$(diagnostics "$crate" --no-default-features)
    if [ -z "$off" ]; then
        echo "$crate: clippy reported nothing over the lints shapes; the comparison would prove nothing"
        status=1
    elif [ "$on" != "$off" ]; then
        echo "$crate: clippy differs with timing on (<) and off (>):"
        diff <(echo "$on") <(echo "$off") || true
        status=1
    else
        echo "$crate: same output on and off ($(echo "$on" | wc -l) clippy diagnostics, the same)"
    fi
done
exit $status
