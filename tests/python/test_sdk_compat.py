"""The mock LLM against the official `anthropic` and `openai` Python SDKs.

Starts the built binary (`DROPZERO_BIN`, default `target/debug/dropzero` from the repo root)
as `dropzero mock-llm --port 0`, reads its `{"listening": ...}` line, and checks that each SDK
streams a response and reads its text and usage without error, and makes a non-streaming
call. Run: `cargo build -p dropzero --bin dropzero && pytest tests/python`.
"""

import json
import os
import subprocess
from pathlib import Path

import anthropic
import openai
import pytest

REPO = Path(__file__).resolve().parents[2]
QUERY = "summarise the incident [dz tokens=25]"


FAST_PROFILE = """
default_output_tokens = 20
ttft = { median = "5ms", p99 = "20ms" }
itl = { median = "1ms", p99 = "4ms" }
[price]
input_per_mtok = 3.0
output_per_mtok = 15.0
"""


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory):
    profile = tmp_path_factory.mktemp("mock") / "profile.toml"
    profile.write_text(FAST_PROFILE)
    binary = Path(os.environ.get("DROPZERO_BIN", REPO / "target" / "debug" / "dropzero"))
    if not binary.is_absolute():
        binary = REPO / binary
    proc = subprocess.Popen(
        [str(binary), "mock-llm", "--port", "0", "--seed", "7", "--profile", str(profile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line, "mock exited before printing its listening line"
        addr = json.loads(line)["listening"]
        yield f"http://{addr}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def anthropic_client(url):
    return anthropic.Anthropic(base_url=url, api_key="dummy", max_retries=0, timeout=30)


def openai_client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="dummy", max_retries=0, timeout=30)


def test_anthropic_stream(mock_url):
    client = anthropic_client(mock_url)
    with client.messages.stream(
        model="claude-mock",
        max_tokens=1024,
        messages=[{"role": "user", "content": QUERY}],
        extra_headers={"x-dropzero-session": "py-a"},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip()
    assert len(text.split()) == 25
    assert final.usage.input_tokens > 0
    assert final.usage.output_tokens == 25
    assert final.stop_reason == "end_turn"


def test_anthropic_non_streaming_and_tool_use(mock_url):
    client = anthropic_client(mock_url)
    msg = client.messages.create(
        model="claude-mock",
        max_tokens=1024,
        messages=[{"role": "user", "content": QUERY}],
    )
    assert msg.content[0].text.strip()
    assert msg.usage.output_tokens == 25
    tool = client.messages.create(
        model="claude-mock",
        max_tokens=1024,
        messages=[{"role": "user", "content": "find it [dz tool=search] [dz tokens=5]"}],
        tools=[{"name": "search", "description": "search", "input_schema": {"type": "object"}}],
        extra_headers={"x-dropzero-role": "worker"},
    )
    assert tool.stop_reason == "tool_use"
    assert tool.content[0].name == "search"
    assert isinstance(tool.content[0].input, dict)


def test_anthropic_rate_limit_is_a_typed_error(mock_url):
    client = anthropic_client(mock_url)
    http = client._client  # the SDK's httpx client: plain JSON to the control endpoint
    assert http.post(f"{mock_url}/mock/faults", json={"rate_limit": 1.0}).status_code == 200
    try:
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(
                model="claude-mock", max_tokens=10, messages=[{"role": "user", "content": "x"}]
            )
    finally:
        http.delete(f"{mock_url}/mock/faults")


def test_openai_stream_with_usage(mock_url):
    client = openai_client(mock_url)
    stream = client.chat.completions.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": QUERY}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text.strip()
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 25 and usage.prompt_tokens > 0


def test_openai_non_streaming(mock_url):
    client = openai_client(mock_url)
    resp = client.chat.completions.create(
        model="gpt-mock", messages=[{"role": "user", "content": QUERY}]
    )
    assert resp.choices[0].message.content.strip()
    assert resp.usage.completion_tokens == 25


def test_ledger_saw_the_session(mock_url):
    ledger = anthropic_client(mock_url)._client.get(f"{mock_url}/mock/ledger").json()
    assert ledger["sessions"]["py-a"]["output_tokens"] == 25
    assert ledger["total"]["cost_usd"] > 0
