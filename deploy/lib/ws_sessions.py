"""WebSocket sessions against the compose stack, from a container on its network.

Usage: ws_sessions.py URL SESSIONS MESSAGES
Each session: a `session` event with a UUID v4 first; MESSAGES text messages
answered in order by `response` events counting 1..MESSAGES; one binary frame
answered by an `error` event without closing; one more text message counted
MESSAGES+1. Prints one line of totals; exit 1 on any deviation.
"""
import asyncio
import json
import sys
import uuid

import websockets


async def session(url, messages):
    async with websockets.connect(url, open_timeout=10, close_timeout=5) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["type"] == "session", first
        assert uuid.UUID(first["sessionId"]).version == 4, first
        responses = 0
        for i in range(1, messages + 1):
            await ws.send(f"hello {i}")
            r = await next_reply(ws)
            assert r["type"] == "response" and r["messageCount"] == i, r
            responses += 1
        await ws.send(b"\x00binary")
        e = await next_reply(ws)
        assert e["type"] == "error" and "Binary" in e["error"], e
        await ws.send("after the error")
        r = await next_reply(ws)
        assert r["type"] == "response" and r["messageCount"] == messages + 1, r
        return responses + 1


async def next_reply(ws):
    # Server events may arrive at any time; they are not replies.
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if m["type"] != "server-event":
            return m


async def main():
    url, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    results = await asyncio.gather(*(session(url, m) for _ in range(n)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    ok = [r for r in results if not isinstance(r, BaseException)]
    print(f"sessions ok {len(ok)}/{n}, responses {sum(ok)}, errors {len(errors)}")
    for e in errors[:3]:
        print("  error:", repr(e))
    sys.exit(0 if not errors else 1)


asyncio.run(main())
