"""A fast webhook receiver for the benchmarks: a bare asyncio HTTP/1.1 server on 127.0.0.1 with
keep-alive, run as its own process so that it never competes for the GIL with the code measured.

It answers every POST with 200 at once and records (receipt time, path, key); a path under
`/slow/` first sleeps `?sleep=<seconds>`, to play a target that outlasts the delivery timeout.
The key is the `x-hook-id` header (this project's deliveries), or with `--key mark` the first
`bmk<hex>` token of the body: other webhook libraries send no such header, so bench/peers.py puts
that token in the saved model and finds it in whatever envelope each library sends.
`POST /_fail?seconds=S` makes it answer 500 to every delivery for S seconds (a target that is down
and comes back); those requests are counted apart and not recorded as received. `POST
/_pause?seconds=S` holds every answer until S seconds from now (a healthy target's one pause: a
garbage collection, a restart behind a load balancer); deliveries are recorded when they arrive.
Control endpoints: `GET /_count`, `GET /_dump` (JSON list of [t, path, key]), `GET /_failed`,
`POST /_reset` (clears both, ends a failure window).
A hand-written parser, not http.server, because the receiver must be much faster than what it
measures (the raw ceiling is measured against it too).

Run: python bench/receiver.py --port 8765 [--key mark] [--max-seconds 1800]"""

import argparse
import asyncio
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

RECORDS: list[tuple[float, str, str]] = []
FAILED: list[tuple[float, str, str]] = []
FAILING_UNTIL = [0.0]
PAUSED_UNTIL = [0.0]
MARK = re.compile(rb"bmk[0-9a-f]{16}")
KEY_BY_MARK = [False]
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
ERROR = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 12\r\n\r\n" + b'{"ok":false}'


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
            body = await reader.readexactly(length) if length else b""
            received = time.time()
            path = target.decode()
            if method == b"GET" and path == "/_count":
                writer.write(_answer(str(len(RECORDS)).encode()))
            elif method == b"GET" and path == "/_dump":
                writer.write(_answer(json.dumps(RECORDS).encode()))
            elif method == b"GET" and path == "/_failed":
                writer.write(_answer(str(len(FAILED)).encode()))
            elif path == "/_reset":
                RECORDS.clear()
                FAILED.clear()
                FAILING_UNTIL[0] = PAUSED_UNTIL[0] = 0.0
                writer.write(OK)
            elif path.startswith("/_fail?"):
                FAILING_UNTIL[0] = received + float(parse_qs(urlsplit(path).query)["seconds"][0])
                writer.write(OK)
            elif path.startswith("/_pause?"):
                PAUSED_UNTIL[0] = received + float(parse_qs(urlsplit(path).query)["seconds"][0])
                writer.write(OK)
            else:
                if KEY_BY_MARK[0]:
                    found = MARK.search(body)
                    key = found.group().decode() if found else ""
                else:
                    key = headers.get(b"x-hook-id", b"").decode()
                if received < FAILING_UNTIL[0]:
                    FAILED.append((received, path.split("?", 1)[0], key))
                    writer.write(ERROR)
                else:
                    RECORDS.append((received, path.split("?", 1)[0], key))
                    if received < PAUSED_UNTIL[0]:
                        await asyncio.sleep(PAUSED_UNTIL[0] - received)
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
    parser.add_argument("--key", choices=("header", "mark"), default="header", help="what identifies a delivery")
    args = parser.parse_args()
    KEY_BY_MARK[0] = args.key == "mark"
    asyncio.run(_serve(args.port, args.max_seconds))


if __name__ == "__main__":
    main()
