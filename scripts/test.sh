#!/usr/bin/env bash
# The test command from the README. Installs the Python packages the SDK-compatibility test
# needs and redis-server (the Redis journal's tests run a real one) when they are missing,
# builds the binary the end-to-end tests drive, runs every test, the browser tests
# (tests/browser: headless Chromium; skipped with a message when Chromium or the npm package
# is missing, a failure under CI=true), then the offline infra checks (terraform
# fmt/validate/test, checkov; each skipped with a message if its tool is missing), then a
# bounded libFuzzer run of the SSE parser, the runtime's request decoding and the scenario
# loader (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import anthropic, openai, pytest, moto.server, hdrh, schemathesis" 2>/dev/null; then
    python3 -m pip install --quiet -r tests/python/requirements.txt
fi

if ! command -v redis-server >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
    # The Redis journal's tests start their own redis-server (also over TLS, with
    # certificates made by the openssl CLI); they cannot run without them.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server openssl >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server openssl >/dev/null; }
    else
        echo "redis-server or openssl is not installed; the Redis journal tests need them (apt-get install redis-server openssl)" >&2
        exit 2
    fi
fi

cargo build --bin dropzero
cargo test --workspace
DROPZERO_BIN="$PWD/target/debug/dropzero" python3 -m pytest -q tests/python

# The browser tests (docs/browser.md): Debian's Chromium driven by playwright-core.
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ] && [ -d tests/browser/node_modules/playwright-core ] && command -v node >/dev/null 2>&1; then
    bin="$PWD/target/debug/dropzero"
    (cd tests/browser && DROPZERO_BIN="$bin" CHROMIUM="$chromium" node --test --test-concurrency=1 ./*.test.mjs)
else
    missing="node ≥ 20, Chromium at $chromium (apt-get install chromium) and playwright-core (cd tests/browser && npm ci)"
    if [ "${CI:-}" = true ]; then
        echo "the browser tests need $missing; .ci/run installs them" >&2
        exit 2
    fi
    echo "SKIPPED the browser tests: they need $missing" >&2
fi
bash scripts/infra_check.sh
# 45 s per target from the committed seeds; a finding fails the run (its input is kept in
# fuzz/artifacts/).
FUZZ_TIME="${FUZZ_TIME:-45}" bash scripts/fuzz.sh sse_parser request_decode scenario_loader
