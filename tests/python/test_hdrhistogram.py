"""The run directory's HdrHistogram files, read by an implementation we did not write.

Runs a small shipped chaos scenario (task-kill: a replica SIGKILLed mid-run, so there are
resumes) with the built binary (`DROPZERO_BIN`, default `target/debug/dropzero`), then reads
`latency.hlog` with the `hdrhistogram` package from PyPI (`hdrh`): every interval decodes,
each tag's intervals add up to the run's sample count in report.json, and the p99 of the
merged intervals matches report.json's p99 within the histogram's precision (3 significant
figures). The `.hgrm` files' last row is the max and the total count.
"""

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

REPO = Path(__file__).resolve().parents[2]
# The bounds the harness records with (harness/src/measure/mod.rs): 1 µs .. 1 h, 3 sig. fig.
LOWEST, HIGHEST, DIGITS = 1, 3_600_000_000, 3
METRICS = {"ttft": "ttft_ms", "itl": "itl_ms", "resume": "resume_ms"}


def binary() -> Path:
    path = Path(os.environ.get("DROPZERO_BIN", REPO / "target" / "debug" / "dropzero"))
    return path if path.is_absolute() else REPO / path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("hdr") / "run"
    done = subprocess.run(
        [
            str(binary()),
            "run",
            str(REPO / "scenarios" / "task-kill.toml"),
            "--time-scale",
            "0.02",
            "--set",
            "load.stages.0.users=12",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def read_tag(path: Path, tag: str) -> tuple[HdrHistogram, int]:
    """Merge every interval of `tag` in the log; also count the intervals."""
    merged = HdrHistogram(LOWEST, HIGHEST, DIGITS)
    intervals = 0
    for line in path.read_text().splitlines():
        if not line.startswith(f"Tag={tag},"):
            continue
        payload = line.rsplit(",", 1)[1]
        merged.decode_and_add(payload)
        intervals += 1
    return merged, intervals


def test_every_interval_decodes_with_the_pypi_reader(run_dir):
    reference = HdrHistogram(LOWEST, HIGHEST, DIGITS)
    reader = HistogramLogReader(str(run_dir / "latency.hlog"), reference)
    read = 0
    while reader.get_next_interval_histogram() is not None:
        read += 1
    lines = [
        line for line in (run_dir / "latency.hlog").read_text().splitlines() if line.startswith("Tag=")
    ]
    assert read == len(lines) > 0


@pytest.mark.parametrize("tag", METRICS)
def test_merged_intervals_match_the_report(run_dir, tag):
    report = json.loads((run_dir / "report.json").read_text())
    expected = report["latency"][METRICS[tag]]
    merged, intervals = read_tag(run_dir / "latency.hlog", tag)
    timeline_seconds = len(report["timeline"])
    # One interval per timeline second, plus the end grace's last partial one.
    assert intervals in (timeline_seconds, timeline_seconds + 1)
    assert merged.get_total_count() == expected["count"]
    if tag == "resume":
        assert expected["count"] > 0, "a SIGKILL mid-run must make clients resume"
    if expected["count"] == 0:
        return
    # The Rust crate's value_at_quantile(0.99) takes the sample of rank ceil(0.99 n); the PyPI
    # reader rounds 0.99 n to the nearest rank instead, and one rank apart in the tail can be
    # several buckets apart. Ask the reader for the same rank, so that only the decoded
    # distribution is compared.
    rank = math.ceil(0.99 * expected["count"])
    p99_ms = merged.get_value_at_percentile(100.0 * rank / expected["count"]) / 1000.0
    assert p99_ms == pytest.approx(expected["p99"], rel=2e-3), (tag, p99_ms, expected)
    max_ms = merged.get_max_value() / 1000.0
    assert max_ms == pytest.approx(expected["max"], rel=2e-3), (tag, max_ms, expected)


@pytest.mark.parametrize("tag", METRICS)
def test_hgrm_last_row_is_the_max_and_the_count(run_dir, tag):
    report = json.loads((run_dir / "report.json").read_text())
    expected = report["latency"][METRICS[tag]]
    rows = [
        line.split()
        for line in (run_dir / f"{tag}.hgrm").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.lstrip().startswith("Value")
    ]
    if expected["count"] == 0:
        assert rows == []
        return
    value, percentile, total = rows[-1][:3]
    assert float(percentile) == 1.0
    assert int(total) == expected["count"]
    assert float(value) == pytest.approx(expected["max"], rel=2e-3)
