"""Streams a chat completion through Fulcrum with the real `openai` client.

    python3 openai_stream.py BASE_URL INTERVAL_MS TOKENS

Prints one JSON document: every content chunk with the time (seconds since
the request started) it reached this program, then a non-streaming answer.
"""

import json
import sys
import time

try:
    from openai import OpenAI
except ImportError:
    print("the python package `openai` is missing: python3 -m pip install openai "
          "(scripts/test installs it)", file=sys.stderr)
    sys.exit(3)

base, interval_ms, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = OpenAI(base_url=base, api_key="sk-test", max_retries=0, timeout=30)
messages = [{"role": "user", "content": "Say something."}]

t0 = time.monotonic()
stream = client.chat.completions.create(
    model="mock-llm",
    messages=messages,
    stream=True,
    max_tokens=tokens,
    extra_headers={"x-mock-token-interval-ms": interval_ms},
)
chunks = []
for chunk in stream:
    choice = chunk.choices[0]
    if choice.delta.content:
        chunks.append({
            "t": time.monotonic() - t0,
            "content": choice.delta.content,
            "finish_reason": choice.finish_reason,
        })

whole = client.chat.completions.create(model="mock-llm", messages=messages, max_tokens=3)
print(json.dumps({
    "chunks": chunks,
    "model": whole.model,
    "content": whole.choices[0].message.content,
}))
