#!/usr/bin/env bash
# The test command from the README. Installs the Python packages the SDK-compatibility test
# needs and redis-server (the Redis journal's tests run a real one) when they are missing,
# builds the binary the end-to-end tests drive, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import anthropic, openai, pytest" 2>/dev/null; then
    python3 -m pip install --quiet -r tests/python/requirements.txt
fi

if ! command -v redis-server >/dev/null 2>&1; then
    # The Redis journal's tests start their own redis-server; they cannot run without one.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }
    else
        echo "redis-server is not installed; the Redis journal tests need it (apt-get install redis-server)" >&2
        exit 2
    fi
fi

cargo build --bin dropzero
cargo test --workspace
DROPZERO_BIN="$PWD/target/debug/dropzero" python3 -m pytest -q tests/python
