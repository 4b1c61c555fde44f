#!/usr/bin/env python3
"""Takeover latency after kill -9: the time from SIGKILL of the replica running a session to the
first event written by the replica that takes it over (its takeover `session` event), as a
client reconnected to the survivor sees it.

Setup per lease TTL: the mock LLM (10 ms between tokens), two resilient replicas sharing one
SQLite journal. Per run: create a long session on replica A, stream until 20 tokens arrived,
wait a random fraction of the heartbeat interval (so kills land at every phase of it),
SIGKILL A, reconnect to B with Last-Event-ID, wait for the takeover event; then cancel the
session on B and start a fresh A for the next run.

Expected: the lease was last extended at most ttl/3 before the kill, so it expires between
2/3·ttl and ttl after it; B's stream checks the lease every 200 ms (its orphan sweep every
ttl/2 ± 25%), then claims, rebuilds the session from the journal and writes the event.

Usage: python3 scripts/takeover_latency.py [--bin target/release/dropzero] [--ttl 1s ...] [--runs 5]
Standard library only.
"""

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def start(binary, args, log):
    proc = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=log)
    line = proc.stdout.readline()
    addr = json.loads(line)["listening"]
    return proc, addr


def post(addr, path, body):
    req = urllib.request.Request(
        f"http://{addr}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def delete(addr, path, token):
    req = urllib.request.Request(
        f"http://{addr}{path}", method="DELETE", headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


class Stream:
    """A minimal SSE reader: yields (seq, event, data) tuples."""

    def __init__(self, addr, session, after):
        host, port = addr.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.conn.request("GET", f"/v1/sessions/{session['session_id']}/events", headers={
            "authorization": f"Bearer {session['resume_token']}",
            "last-event-id": str(after),
        })
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.status

    def events(self):
        seq, kind, data = None, None, None
        while True:
            line = self.resp.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and seq is not None:
                yield seq, kind, data
                seq, kind, data = None, None, None

    def close(self):
        self.conn.close()


def seconds(text):
    """'500ms' / '2s' → seconds."""
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


def measure(binary, ttl, runs, workdir):
    profile = os.path.join(workdir, "profile.toml")
    with open(profile, "w") as f:
        f.write('[ttft]\nmedian = "10ms"\np99 = "20ms"\n\n[itl]\nmedian = "10ms"\np99 = "10ms"\n')
    journal = f"sqlite:{os.path.join(workdir, f'j-{ttl}.db')}"
    log = open(os.path.join(workdir, f"logs-{ttl}.jsonl"), "w")
    mock, mock_addr = start(binary, ["mock-llm", "--port", "0", "--profile", profile], log)

    def replica(name):
        return start(binary, ["runtime", "--port", "0", "--mode", "resilient",
                              "--journal", journal, "--llm-url", f"http://{mock_addr}",
                              "--replica-id", name, "--lease-ttl", ttl], log)

    b, b_addr = replica("rB")
    samples = []
    try:
        for run in range(runs):
            a, a_addr = replica(f"rA{run}")
            session = post(a_addr, "/v1/sessions",
                           {"query": "takeover latency [dz tokens=3000] [dz steps=1]"})
            stream = Stream(a_addr, session, 0)
            tokens, last = 0, 0
            for seq, kind, _ in stream.events():
                last = seq
                tokens += kind == "token"
                if tokens >= 20:
                    break
            time.sleep(random.uniform(0, seconds(ttl) / 3))
            os.kill(a.pid, signal.SIGKILL)
            killed = time.monotonic()
            a.wait()
            stream.close()
            resumed = Stream(b_addr, session, last)
            for seq, kind, data in resumed.events():
                if kind == "session":
                    latency = time.monotonic() - killed
                    assert data["takeover"]["from"] == f"rA{run}", data
                    samples.append(latency)
                    break
            resumed.close()
            delete(b_addr, f"/v1/sessions/{session['session_id']}", session["resume_token"])
    finally:
        for p in (b, mock):
            p.send_signal(signal.SIGKILL)
            p.wait()
        log.close()
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default="target/release/dropzero")
    parser.add_argument("--ttl", action="append", help="lease TTL (repeatable), e.g. 1s")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ttls = args.ttl or ["500ms", "1s", "2s", "5s"]
    print(f"{'lease ttl':>9}  {'runs':>4}  {'min':>7}  {'median':>7}  {'max':>7}   (seconds, kill -9 → new owner's first event)")
    with tempfile.TemporaryDirectory() as workdir:
        for ttl in ttls:
            samples = measure(args.bin, ttl, args.runs, workdir)
            print(f"{ttl:>9}  {len(samples):>4}  {min(samples):7.3f}  "
                  f"{statistics.median(samples):7.3f}  {max(samples):7.3f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
