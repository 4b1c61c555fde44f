#!/usr/bin/env bash
# Bounded fuzz run of the libFuzzer targets in fuzz/ (docs/fuzzing.md).
#
#   scripts/fuzz.sh                    # every target, 60 s each
#   FUZZ_TIME=300 scripts/fuzz.sh sse_parser
#
# Builds the targets with the stable toolchain and the coverage instrumentation cargo-fuzz
# would ask rustc for (`--cfg fuzzing`, SanitizerCoverage's inline 8-bit counters, PC table
# and compare tracing; libfuzzer-sys links libFuzzer itself), so neither nightly nor
# cargo-fuzz is needed; `cargo +nightly fuzz run` on the same crate works too. `--target` is
# explicit so the instrumentation reaches the targets and their dependencies but not build
# scripts or proc macros.
#
# Each target starts from its committed seed corpus (fuzz/corpus/<target>/, read only) plus
# a working corpus in fuzz/work/<target>/ (git-ignored) that grows across runs. A crash,
# a failed assertion, a leak of the limits or a timeout leaves its input in
# fuzz/artifacts/<target>/ and fails the script. Prints, per target, the runs and execs/s
# libFuzzer reports.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_TIME="${FUZZ_TIME:-60}"
# Per-input memory: far above what the bounded parsers may hold, far below the machine.
FUZZ_RSS_MB="${FUZZ_RSS_MB:-2048}"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"

ALL=(sse_parser request_decode scenario_loader)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${ALL[@]}")
fi

# The cargo features each target needs (fuzz/Cargo.toml): the SSE parser and the scenario
# loader build in seconds; the request decoder pulls in the runtime.
features() {
    case "$1" in
        sse_parser) echo "" ;;
        request_decode) echo runtime ;;
        scenario_loader) echo scenario ;;
        *) echo "fuzz: unknown target $1 (known: ${ALL[*]})" >&2; exit 2 ;;
    esac
}

started=$(date +%s)
for target in "${targets[@]}"; do
    echo "fuzz: building $target" >&2
    (cd fuzz && cargo build --quiet --release --target "$TRIPLE" --features "$(features "$target")" --bin "$target")
done
echo "fuzz: build took $(( $(date +%s) - started )) s" >&2

status=0
for target in "${targets[@]}"; do
    mkdir -p "fuzz/work/$target" "fuzz/artifacts/$target"
    log="fuzz/work/$target.log"
    echo "fuzz: $target for ${FUZZ_TIME} s" >&2
    if "$CARGO_TARGET_DIR/$TRIPLE/release/$target" \
        -artifact_prefix="fuzz/artifacts/$target/" \
        -max_total_time="$FUZZ_TIME" -rss_limit_mb="$FUZZ_RSS_MB" -timeout=10 \
        -print_final_stats=1 "fuzz/work/$target" "fuzz/corpus/$target" >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
        rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        echo "fuzz: $target: ok, ${runs:-?} runs, ${rate:-?} execs/s, ${cov:-cov: ?}, corpus $(ls "fuzz/work/$target" | wc -l) inputs"
    else
        status=1
        echo "fuzz: $target: FAILED (log: $log; inputs: fuzz/artifacts/$target/)" >&2
        tail -40 "$log" >&2
    fi
done
exit $status
