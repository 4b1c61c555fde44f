#!/usr/bin/env bash
# The test command from the README. Installs the Python packages the SDK-compatibility test
# needs when they are missing, builds the binary the end-to-end tests drive, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import anthropic, openai, pytest" 2>/dev/null; then
    python3 -m pip install --quiet -r tests/python/requirements.txt
fi

cargo build --bin dropzero
cargo test --workspace
DROPZERO_BIN="$PWD/target/debug/dropzero" python3 -m pytest -q tests/python
