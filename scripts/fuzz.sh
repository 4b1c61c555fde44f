#!/usr/bin/env bash
# Bounded fuzz run of every cargo-fuzz target in fuzz/ (libFuzzer; needs a nightly toolchain).
#
#   scripts/fuzz.sh                    # every target, 60 s each
#   FUZZ_TIME=300 scripts/fuzz.sh sse_parser
#
# Each target starts from its committed seed corpus (fuzz/corpus/<target>/, read only) plus
# a working corpus in fuzz/work/<target>/ (git-ignored) that grows across runs. A crash,
# a failed assertion, a leak of the limits or a timeout leaves its input in
# fuzz/artifacts/<target>/ and fails the script. Installs cargo-fuzz if it is missing; skips
# (exit 0, with a message) if no nightly toolchain is installed. Prints, per target, the runs
# and execs/s libFuzzer reports.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_TIME="${FUZZ_TIME:-60}"
# No sanitizer by default: the code under test is safe Rust (unsafe_code = "deny"), so
# AddressSanitizer adds build time and slows execution without finding more; the asserts
# and libFuzzer's RSS limit are the checks. FUZZ_SANITIZER=address to use it anyway.
FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}"
# Per-input memory: far above what the bounded parsers may hold, far below the machine.
FUZZ_RSS_MB="${FUZZ_RSS_MB:-2048}"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly)" >&2
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi

# The cargo features each target needs (fuzz/Cargo.toml): the SSE parser alone builds in
# seconds; the others pull in the runtime or the harness.
features() {
    case "$1" in
        request_decode) echo runtime ;;
        scenario_loader) echo harness ;;
        *) echo "" ;;
    esac
}

started=$(date +%s)
for target in "${targets[@]}"; do
    cargo +nightly fuzz build --fuzz-dir fuzz --sanitizer "$FUZZ_SANITIZER" \
        --features "$(features "$target")" "$target"
done
echo "fuzz: build took $(( $(date +%s) - started )) s" >&2

status=0
for target in "${targets[@]}"; do
    mkdir -p "fuzz/work/$target" "fuzz/artifacts/$target"
    log="fuzz/work/$target.log"
    echo "fuzz: $target for ${FUZZ_TIME} s" >&2
    if cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer "$FUZZ_SANITIZER" \
        --features "$(features "$target")" \
        "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$FUZZ_TIME" -rss_limit_mb="$FUZZ_RSS_MB" -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1; then
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
