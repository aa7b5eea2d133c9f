#!/usr/bin/env python3
"""Fake scrape targets for the benchmark: one asyncio process serving `--targets` exporters
on consecutive loopback ports, each with `--series` series in the Prometheus text format.

Every series is a counter that grows on every scrape, so each scrape appends new values.
Bodies are rendered from precomputed per-series prefixes. Binds 127.0.0.1 only and exits by
itself after `--max-seconds`.
"""

import argparse
import asyncio
import os
import signal
import sys


def build_prefixes(target, series):
    lines = []
    per_name = 100
    for i in range(series):
        name = "fake_metric_%03d_total" % (i // per_name)
        lines.append('%s{target="t%d",shard="%d",kind="k%d"} ' % (name, target, i % per_name, i % 7))
    return lines


class Target:
    def __init__(self, idx, series):
        self.prefixes = build_prefixes(idx, series)
        self.scrapes = 0

    def body(self):
        self.scrapes += 1
        n = self.scrapes
        parts = []
        for i, p in enumerate(self.prefixes):
            parts.append(p)
            parts.append(str(n * (i % 13 + 1)))
            parts.append("\n")
        return "".join(parts).encode()


async def handle(reader, writer, target):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            line = head.split(b"\r\n", 1)[0]
            if line.startswith(b"GET /metrics"):
                body = target.body()
                status = b"200 OK"
            else:
                body = b"not found\n"
                status = b"404 Not Found"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; version=0.0.4"
                         b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError,
            asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main_async(args):
    servers = []
    for i in range(args.targets):
        t = Target(i, args.series)
        srv = await asyncio.start_server(lambda r, w, t=t: handle(r, w, t), "127.0.0.1",
                                         args.base_port + i)
        servers.append(srv)
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(str(os.getpid()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
    except asyncio.TimeoutError:
        pass
    for s in servers:
        s.close()


def main():
    p = argparse.ArgumentParser(description="fake loopback scrape targets")
    p.add_argument("--targets", type=int, default=10)
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--base-port", type=int, default=19300)
    p.add_argument("--max-seconds", type=float, default=900)
    p.add_argument("--ready-file")
    args = p.parse_args()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
