#!/usr/bin/env python3
"""The change-notification flood (issue 28; figures in BENCHMARKS.md), from outside, against
the release build as operators run it.

Starts `dist/gatehouse serve --dev-outbox` on a fresh SQLite file (no Entra app: nobody's subscription is
genuine, as for an attacker), then, from one client address:

1. ten unauthenticated 2 MB bodies of `{"value":[{},{},...]}` (about 690 000 items each), as
   the outside review sent;
2. a thousand small forged deliveries (one item naming a subscription that does not exist).

For each: the answers, the time per request (p50, p95, longest), the server's RSS before and
after, and the log lines it wrote.

Run (after ./scripts/build-release.sh): python3 benches/notification_flood.py [dist]
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def post(port, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    conn.request(
        "POST",
        "/api/entra/notifications",
        body=body,
        headers={"Host": "localhost:3000", "Content-Type": "application/json"},
    )
    res = conn.getresponse()
    res.read()
    took = (time.perf_counter() - started) * 1000
    conn.close()
    return res.status, took


def summary(name, results, pid, rss_before, log_before, log):
    statuses = Counter(status for status, _ in results)
    took = sorted(ms for _, ms in results)
    p95 = took[max(0, -(-95 * len(took) // 100) - 1)]
    log.flush()
    lines = sum(1 for _ in open(log.name)) - log_before
    print(
        f"| {name} | {len(results)} | {dict(sorted(statuses.items()))} | "
        f"{statistics.median(took):.1f} / {p95:.1f} / {took[-1]:.1f} | "
        f"{rss_before:.0f} → {rss_mb(pid):.0f} | {lines} |"
    )


def main():
    dist = sys.argv[1] if len(sys.argv) > 1 else "dist"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, open(os.path.join(tmp, "log"), "w+") as log:
        env = dict(
            os.environ,
            LEPTOS_SITE_ROOT=os.path.join(dist, "site"),
            GATEHOUSE_DATABASE_URL=f"sqlite://{tmp}/gatehouse.db?mode=rwc",
            RUST_LOG="gatehouse=info",
        )
        server = subprocess.Popen(
            [os.path.join(dist, "gatehouse"), "serve", "--dev-outbox", "--listen", f"127.0.0.1:{port}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None:
                        sys.exit("the server stopped:\n" + open(log.name).read())
                    time.sleep(0.1)
            time.sleep(0.5)
            print("| what | requests | answers | ms p50 / p95 / longest | RSS MB before → after | log lines |")
            print("|---|---|---|---|---|---|")
            big = b'{"value":[' + b",".join([b"{}"] * 690_000) + b"]}"
            rss, logged = rss_mb(server.pid), sum(1 for _ in open(log.name))
            results = [post(port, big) for _ in range(10)]
            summary(f"2 MB body of {690_000} empty items", results, server.pid, rss, logged, log)
            forged = json.dumps(
                {
                    "value": [
                        {
                            "subscriptionId": "00000000-0000-0000-0000-000000000000",
                            "clientState": "guess",
                            "tenantId": "11111111-1111-1111-1111-111111111111",
                            "changeType": "updated",
                            "resource": "users/x",
                        }
                    ]
                }
            ).encode()
            rss, logged = rss_mb(server.pid), sum(1 for _ in open(log.name))
            results = [post(port, forged) for _ in range(1000)]
            summary("forged one-item deliveries", results, server.pid, rss, logged, log)
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    main()
