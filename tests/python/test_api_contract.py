"""The API contract (docs/openapi.yaml) checked by schemathesis against a live runtime.

Starts the built binary (`DROPZERO_BIN`, default `target/debug/dropzero`) three times: a mock
LLM for the runtime, the runtime (`dropzero runtime`, resilient, memory journal) and a second
mock LLM whose control endpoints schemathesis fuzzes (its fault windows would otherwise slow
or fail the runtime's sessions). Then runs the schemathesis CLI twice — the runtime's
operations against the runtime's own `/openapi.json`, the `mock-llm` tag against the second
mock — with the checks below, and fails on any finding.

Bounded: a fixed seed, `MAX_EXAMPLES` cases per operation and phase, a per-request timeout.
The SSE endpoint needs no exclusion: its streams end by themselves after `done` (the fast
mock profile finishes a session in well under a second), and with a valid session (the
stateful phase follows the create response's links) schemathesis reads the whole stream.
`/admin/oom` is excluded: with `--fault-endpoints` it would kill the runtime (it is off
here, and its 404 is covered by the Rust contract test).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = int(os.environ.get("DROPZERO_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)

FAST_PROFILE = """
default_output_tokens = 12
ttft = { median = "2ms", p99 = "10ms" }
itl = { median = "1ms", p99 = "3ms" }
[price]
input_per_mtok = 3.0
output_per_mtok = 15.0
"""


def binary():
    path = Path(os.environ.get("DROPZERO_BIN", REPO / "target" / "debug" / "dropzero"))
    return path if path.is_absolute() else REPO / path


def start(args):
    """Start `dropzero ARGS`, return (process, base URL) from its listening line."""
    proc = subprocess.Popen(
        [str(binary()), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError(f"dropzero {' '.join(args)} exited before listening")
    return proc, "http://" + json.loads(line)["listening"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    profile = tmp_path_factory.mktemp("contract") / "profile.toml"
    profile.write_text(FAST_PROFILE)
    mock_args = ["mock-llm", "--port", "0", "--seed", "7", "--profile", str(profile)]
    procs = []
    try:
        llm, llm_url = start(mock_args)
        procs.append(llm)
        fuzzed, fuzzed_url = start(mock_args)
        procs.append(fuzzed)
        runtime, runtime_url = start(
            ["runtime", "--port", "0", "--llm-url", llm_url, "--journal", "memory",
             "--replica-id", "contract", "--keepalive", "2s"]
        )
        procs.append(runtime)
        yield {"runtime": runtime_url, "mock": fuzzed_url}
        for proc in procs:
            assert proc.poll() is None, "a server died during the contract run"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def schemathesis(schema, base, *filters, report, cwd):
    """Run the schemathesis CLI; return (exit code, output, seconds)."""
    cmd = [
        sys.executable, "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        "run", schema,
        "--url", base,
        "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", "7",
        "--request-timeout", "15",
        "--workers", "2",
        "--suppress-health-check", "too_slow",
        "--generation-database", "none",
        "--no-color",
        "--output-sanitize", os.environ.get("DROPZERO_SCHEMATHESIS_SANITIZE", "true"),
        "--report", "ndjson",
        "--report-ndjson-path", str(report),
        *filters,
    ]
    started = time.monotonic()
    # Its cache (`.schemathesis/`) goes to the test's temporary directory, not the repository.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def requests_sent(report):
    """How many HTTP requests the run made, from its NDJSON event log."""
    count = 0
    for line in report.read_text().splitlines():
        count += line.count('"request": {') + line.count('"request":{')
    return count


def run_and_check(name, schema, base, tmp_path, *filters):
    report = tmp_path / f"{name}.ndjson"
    code, output, seconds = schemathesis(schema, base, *filters, report=report, cwd=tmp_path)
    sent = requests_sent(report) if report.exists() else 0
    print(f"\nschemathesis {name}: exit {code}, {seconds:.1f} s, {sent} requests")
    summary = [l for l in output.splitlines() if re.search(r"passed|failed|errored|cases", l)]
    print("\n".join(summary[-6:]))
    assert code == 0, f"schemathesis found problems in the {name} API:\n{output[-20000:]}"
    assert sent > 0, f"schemathesis sent no request to the {name} API:\n{output[-5000:]}"
    return sent


def test_runtime_conforms_to_its_openapi_document(servers, tmp_path):
    base = servers["runtime"]
    run_and_check(
        "runtime", f"{base}/openapi.json", base, tmp_path,
        "--exclude-tag", "mock-llm",
        "--exclude-path", "/admin/oom",
    )


def test_mock_llm_control_endpoints_conform(servers, tmp_path):
    run_and_check(
        "mock-llm", str(REPO / "docs" / "openapi.yaml"), servers["mock"], tmp_path,
        "--include-tag", "mock-llm",
        # No links among the control endpoints: nothing for a stateful phase to follow.
        "--phases", "examples,coverage,fuzzing",
    )
