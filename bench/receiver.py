"""A fast webhook receiver for the benchmarks: a bare asyncio HTTP/1.1 server on 127.0.0.1 with
keep-alive, run as its own process so that it never competes for the GIL with the code measured.

It answers every POST with 200 at once and records (receipt time, path, x-hook-id); a path under
`/slow/` first sleeps `?sleep=<seconds>`, to play a target that outlasts the delivery timeout.
Control endpoints: `GET /_count`, `GET /_dump` (JSON list of [t, path, hook_id]), `POST /_reset`.
A hand-written parser, not http.server, because the receiver must be much faster than what it
measures (the raw ceiling is measured against it too).

Run: python bench/receiver.py --port 8765 [--max-seconds 1800]"""

import argparse
import asyncio
import json
import time
from urllib.parse import parse_qs, urlsplit

RECORDS: list[tuple[float, str, str]] = []
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


def _answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            method, target, _ = lines[0].split(b" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    key, _, value = line.partition(b":")
                    headers[key.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            if length:
                await reader.readexactly(length)
            received = time.time()
            path = target.decode()
            if method == b"GET" and path == "/_count":
                writer.write(_answer(str(len(RECORDS)).encode()))
            elif method == b"GET" and path == "/_dump":
                writer.write(_answer(json.dumps(RECORDS).encode()))
            elif path == "/_reset":
                RECORDS.clear()
                writer.write(OK)
            else:
                RECORDS.append((received, path.split("?", 1)[0], headers.get(b"x-hook-id", b"").decode()))
                if path.startswith("/slow/"):
                    delay = float(parse_qs(urlsplit(path).query).get("sleep", ["5"])[0])
                    await asyncio.sleep(delay)
                writer.write(OK)
            await writer.drain()
            if headers.get(b"connection", b"").lower() == b"close":
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def _serve(port: int, max_seconds: float) -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", port, backlog=1024)
    async with server:
        # Bounded: a receiver left behind by a crashed benchmark ends by itself.
        await asyncio.sleep(max_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=1800)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.max_seconds))


if __name__ == "__main__":
    main()
