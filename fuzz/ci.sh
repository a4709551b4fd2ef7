#!/usr/bin/env bash
# The fuzz targets' short run for CI (docs/fuzzing.md).
#
# Always: every corpus file replayed through its target's entry function on the stable
# compiler (tests/fuzz_corpus.rs, part of `cargo test`), so nothing but the main build is needed.
# With BATON_FUZZ_SECONDS=N (and cargo-fuzz installed): each target also fuzzed for N seconds
# from its corpus, on stable through RUSTC_BOOTSTRAP=1 and without a sanitizer; a crash fails
# the run and leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --test tests -- fuzz_corpus

seconds="${BATON_FUZZ_SECONDS:-0}"
[ "$seconds" -gt 0 ] || exit 0
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2; exit 1; }
cd fuzz
export RUSTC_BOOTSTRAP=1
cargo +stable fuzz build --sanitizer none
for target in $(cargo +stable fuzz list); do
  mkdir -p "corpus/$target"
  # A scratch copy of the corpus: what a short run adds is not kept.
  scratch="$(mktemp -d)"
  cp -r "corpus/$target/." "$scratch/"
  status=0
  cargo +stable fuzz run --sanitizer none "$target" "$scratch" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
    >"$scratch.log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|SUMMARY)' "$scratch.log" \
    | sed "s/^/$target: /" || true
  [ "$status" -eq 0 ] || tail -n 40 "$scratch.log" >&2
  rm -rf "$scratch" "$scratch.log"
  [ "$status" -eq 0 ] || { echo "fuzz target $target failed (exit $status)" >&2; exit 1; }
done
