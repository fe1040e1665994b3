#!/usr/bin/env python3
"""Mixed traffic for bench/soak.sh, against one gateway on loopback, for a bounded time.

Four kinds of client run side by side (stdlib only, asyncio, raw HTTP/1.1):
  steady     keep-alive connections sending GETs at a fixed total rate (paths of the sim:
             /, /bytes/2000, /echo, /delay/20ms; a new connection every 200 requests)
  faults     one request at a time on a fresh connection, Host `faults.test` (a route
             with a 1 s timeout): /status/503, /delay/3s (past the 1 s route timeout),
             /reset, /close, /hang; and a client that drops the connection mid-response
  slowread   clients with a 4 KiB receive buffer that ask for 5 MB and read 1 KiB every
             100 ms until the gateway's deadline cuts them off (or 15 s)
  slowpost   clients that announce a 100 kB body and send 100 bytes every 200 ms

Every socket operation has a timeout, and every loop ends when --seconds pass. At the end
one JSON line of counts goes to stdout.
"""

import argparse
import asyncio
import collections
import json
import socket
import time

COUNTS = collections.Counter()
STEADY_PATHS = ["/", "/bytes/2000", "/echo", "/delay/20ms"]
FAULT_PATHS = ["/status/503", "/delay/3s", "/reset", "/close", "/hang"]


async def read_response(reader, timeout):
    """Reads one response; returns (status, keep_alive). Raises on a broken framing."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await asyncio.wait_for(reader.readline(), timeout)).split(b";")[0], 16)
            await asyncio.wait_for(reader.readexactly(size + 2), timeout)
            if size == 0:
                break
    else:
        await asyncio.wait_for(reader.read(), timeout)
        return status, False
    return status, headers.get("connection", "").lower() != "close"


async def close(writer):
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 2)
    except Exception:
        pass


async def steady(host, port, rate, end):
    """One keep-alive connection sending `rate` GETs a second until `end`."""
    interval = 1.0 / rate
    n = 0
    next_at = time.monotonic()
    while time.monotonic() < end:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        except Exception:
            COUNTS["steady_connect_error"] += 1
            await asyncio.sleep(1)
            continue
        try:
            for _ in range(200):
                if time.monotonic() >= end:
                    break
                path = STEADY_PATHS[n % len(STEADY_PATHS)]
                n += 1
                writer.write(f"GET {path} HTTP/1.1\r\nHost: soak.test\r\n\r\n".encode())
                status, keep = await read_response(reader, 10)
                COUNTS[f"steady_{status}"] += 1
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                if not keep:
                    break
        except Exception as e:
            COUNTS[f"steady_error_{type(e).__name__}"] += 1
        finally:
            await close(writer)


async def faults(host, port, end):
    """Upstream faults through the gateway, one at a time, about five a second."""
    n = 0
    while time.monotonic() < end:
        path = FAULT_PATHS[n % len(FAULT_PATHS)]
        n += 1
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        except Exception:
            COUNTS["fault_connect_error"] += 1
            await asyncio.sleep(1)
            continue
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: faults.test\r\nConnection: close\r\n\r\n".encode())
            if n % 7 == 0:
                # The client gives up before the answer.
                await asyncio.sleep(0.05)
                COUNTS["fault_client_abort"] += 1
            else:
                status, _ = await read_response(reader, 10)
                COUNTS[f"fault_{status}"] += 1
        except Exception as e:
            COUNTS[f"fault_error_{type(e).__name__}"] += 1
        finally:
            await close(writer)
        await asyncio.sleep(0.2)


async def slowread(host, port, end):
    """Asks for a large body and reads it slowly, until cut off, again and again."""
    while time.monotonic() < end:
        try:
            # A small receive buffer, so that the kernel does not read the body for us.
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, int(port))), 5)
            reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        except Exception:
            COUNTS["slowread_connect_error"] += 1
            await asyncio.sleep(1)
            continue
        started = time.monotonic()
        try:
            writer.write(b"GET /bytes/5000000 HTTP/1.1\r\nHost: soak.test\r\nConnection: close\r\n\r\n")
            while time.monotonic() - started < 15 and time.monotonic() < end:
                chunk = await asyncio.wait_for(reader.read(1024), 5)
                if not chunk:
                    COUNTS["slowread_cut_off"] += 1
                    break
                await asyncio.sleep(0.1)
            else:
                COUNTS["slowread_gave_up"] += 1
        except Exception as e:
            COUNTS[f"slowread_error_{type(e).__name__}"] += 1
        finally:
            await close(writer)


async def slowpost(host, port, end):
    """Announces a 100 kB body and trickles it, until the gateway answers or 15 s pass."""
    while time.monotonic() < end:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        except Exception:
            COUNTS["slowpost_connect_error"] += 1
            await asyncio.sleep(1)
            continue
        started = time.monotonic()
        try:
            writer.write(b"POST /echo HTTP/1.1\r\nHost: soak.test\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n")
            answer = asyncio.ensure_future(read_response(reader, 20))
            while not answer.done() and time.monotonic() - started < 15 and time.monotonic() < end:
                writer.write(b"x" * 100)
                await asyncio.wait_for(writer.drain(), 5)
                await asyncio.sleep(0.2)
            if answer.done():
                status, _ = answer.result()
                COUNTS[f"slowpost_{status}"] += 1
            else:
                answer.cancel()
                COUNTS["slowpost_gave_up"] += 1
        except Exception as e:
            COUNTS[f"slowpost_error_{type(e).__name__}"] += 1
        finally:
            await close(writer)


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="127.0.0.1:18780")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--rate", type=float, default=200, help="steady GETs per second, in total")
    p.add_argument("--steady-conns", type=int, default=8)
    p.add_argument("--slow-readers", type=int, default=4)
    p.add_argument("--slow-uploaders", type=int, default=4)
    a = p.parse_args()
    host, port = a.target.rsplit(":", 1)
    end = time.monotonic() + a.seconds
    tasks = [steady(host, port, a.rate / a.steady_conns, end) for _ in range(a.steady_conns)]
    tasks.append(faults(host, port, end))
    tasks += [slowread(host, port, end) for _ in range(a.slow_readers)]
    tasks += [slowpost(host, port, end) for _ in range(a.slow_uploaders)]
    # Each loop checks `end` between requests; this bounds a last one that hangs.
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), a.seconds + 30)
    except asyncio.TimeoutError:
        COUNTS["driver_overran"] += 1
    print(json.dumps(dict(sorted(COUNTS.items()))))


if __name__ == "__main__":
    asyncio.run(main())
