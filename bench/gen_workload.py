#!/usr/bin/env python3
"""Deterministic OpenMetrics workload for the side-by-side benchmark.

The same arguments always give a byte-identical file; a `<out>.meta.json` next to it records
the sample and series counts, the time range and the sha256.

One *target* (an application instance scraped every `--interval`) exposes 118 series:

* `http_requests_total{job,instance,handler,method,status}`: counters, 6 handlers x 5 status
  codes. Integer increments follow a per-handler base rate, a daily cycle and noise; each
  target restarts now and then (about every `--restart-every`), which resets all of its
  counters and histograms to zero.
* `http_request_duration_seconds{job,instance,handler}`: classic histograms with 12 buckets
  (`le` 0.005 ... 10 and +Inf) plus `_sum` (a full-precision float) and `_count`. Each step's
  observations are the handler's request increments, spread over the buckets by a lognormal
  latency whose median drifts and occasionally spikes.
* gauges: `cpu_usage_percent` (float, mean-reverting), `memory_usage_bytes` (integer
  sawtooth), `processing_queue_size` (integer: always 0 on every other target, bursty on the
  rest) and `up` (always 1).

Timestamps: every target has a fixed scrape phase inside the interval (never on a whole
second, so that evaluation times on a step grid never coincide with a sample); a fraction
`--jitter-prob` of scrapes arrive 1..`--jitter-ms` ms late. Timestamps are written as
`seconds.milliseconds`.
"""

import argparse
import hashlib
import json
import math
import os
import random
import sys
import tempfile

HANDLERS = [
    ("GET", "/api/items", 12.0),
    ("GET", "/api/users", 5.0),
    ("POST", "/api/orders", 2.0),
    ("GET", "/healthz", 1.0),
    ("PUT", "/api/items", 0.8),
    ("DELETE", "/api/items", 0.2),
]
STATUSES = [("200", 0.86), ("201", 0.07), ("404", 0.04), ("500", 0.02), ("503", 0.01)]
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
LE_STRS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]
JOBS = ["checkout", "catalog", "accounts", "search", "payments", "gateway"]
SERIES_PER_TARGET = len(HANDLERS) * len(STATUSES) + len(HANDLERS) * (len(LE_STRS) + 2) + 4


def parse_duration(s):
    """'6h', '90m', '15s', '1d' -> seconds (int)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if s and s[-1] in units:
        return int(float(s[:-1]) * units[s[-1]])
    return int(s)


def norm_cdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def fmt_ts(ms):
    return "%d.%03d" % divmod(ms, 1000)


def simulate_target(idx, args, steps, out_req, out_hist, out_gauge):
    """Simulates one target and appends its lines to the three family buffers."""
    rng = random.Random(args.seed * 1_000_003 + idx)
    job = JOBS[idx % len(JOBS)]
    inst = "host-%05d:9100" % idx
    interval_ms = args.interval * 1000
    # a phase inside the interval that is never on a whole second
    phase = rng.randrange(1, interval_ms // 1000) * 1000 + rng.randrange(101, 900)
    phase = min(phase, interval_ms - 100)
    timestamps = []
    for k in range(steps):
        t = args.start * 1000 + k * interval_ms + phase
        if rng.random() < args.jitter_prob:
            t += rng.randint(1, args.jitter_ms)
        timestamps.append(t)
    ts_strs = [fmt_ts(t) for t in timestamps]

    restart_p = args.interval / max(1, args.restart_every)
    restarts = [k > 0 and rng.random() < restart_p for k in range(steps)]
    scale = rng.uniform(0.5, 2.0)
    day_phase = rng.uniform(0, 2 * math.pi)

    # request increments per (handler, status) and step
    incs = [[[0] * steps for _ in STATUSES] for _ in HANDLERS]
    for h, (_, _, base) in enumerate(HANDLERS):
        for s, (_, share) in enumerate(STATUSES):
            row = incs[h][s]
            for k in range(steps):
                t_s = args.start + k * args.interval
                day = 1.0 + 0.35 * math.sin(2 * math.pi * t_s / 86400 + day_phase)
                mean = base * scale * share * day * args.interval * (1.0 + 0.1 * rng.gauss(0, 1))
                if mean <= 0:
                    continue
                whole = int(mean)
                row[k] = whole + (1 if rng.random() < mean - whole else 0)

    lab_base = 'instance="%s",job="%s"' % (inst, job)
    # counters
    for h, (method, handler, _) in enumerate(HANDLERS):
        for s, (status, _) in enumerate(STATUSES):
            prefix = 'http_requests_total{handler="%s",%s,method="%s",status="%s"} ' % (
                handler, lab_base, method, status)
            v = rng.randrange(0, 50_000)  # accumulated before the data starts
            row = incs[h][s]
            lines = []
            for k in range(steps):
                if restarts[k]:
                    v = 0
                v += row[k]
                lines.append("%s%d %s\n" % (prefix, v, ts_strs[k]))
            out_req.write("".join(lines))

    # histograms
    for h, (method, handler, _) in enumerate(HANDLERS):
        base_median = 0.02 * (1 + h) * rng.uniform(0.7, 1.5)
        sigma = 0.7
        median = base_median
        n_steps = [sum(incs[h][s][k] for s in range(len(STATUSES))) for k in range(steps)]
        cum = [[0] * steps for _ in LE_STRS]
        sums = [0.0] * steps
        counts = [0] * (len(LE_STRS))
        total_sum = rng.uniform(0, 1000.0)
        for b in range(len(LE_STRS)):
            counts[b] = 0
        for k in range(steps):
            if k % 20 == 0:
                median = base_median * math.exp(0.25 * rng.gauss(0, 1))
                if rng.random() < 0.03:
                    median *= 4.0
            if restarts[k]:
                counts = [0] * len(LE_STRS)
                total_sum = 0.0
            n = n_steps[k]
            u = rng.random()
            for b, le in enumerate(BUCKETS):
                frac = norm_cdf((math.log(le) - math.log(median)) / sigma)
                counts[b] += int(n * frac + u)
            counts[-1] += n
            # keep buckets cumulative even after rounding
            for b in range(1, len(counts)):
                if counts[b] < counts[b - 1]:
                    counts[b] = counts[b - 1]
            total_sum += n * median * math.exp(sigma * sigma / 2) * (1 + 0.05 * rng.gauss(0, 1))
            for b in range(len(LE_STRS)):
                cum[b][k] = counts[b]
            sums[k] = total_sum
        hl = 'handler="%s",%s' % (handler, lab_base)
        for b, le in enumerate(LE_STRS):
            prefix = 'http_request_duration_seconds_bucket{%s,le="%s",method="%s"} ' % (hl, le, method)
            out_hist.write("".join("%s%d %s\n" % (prefix, cum[b][k], ts_strs[k]) for k in range(steps)))
        prefix = 'http_request_duration_seconds_sum{%s,method="%s"} ' % (hl, method)
        out_hist.write("".join("%s%s %s\n" % (prefix, repr(sums[k]), ts_strs[k]) for k in range(steps)))
        prefix = 'http_request_duration_seconds_count{%s,method="%s"} ' % (hl, method)
        out_hist.write("".join("%s%d %s\n" % (prefix, cum[-1][k], ts_strs[k]) for k in range(steps)))

    # gauges
    cpu = rng.uniform(10, 60)
    mean_cpu = cpu
    mem = rng.randrange(200_000_000, 400_000_000)
    queue = 0
    bursty = idx % 2 == 1
    g_cpu, g_mem, g_q, g_up = [], [], [], []
    for k in range(steps):
        cpu += 0.2 * (mean_cpu - cpu) + rng.gauss(0, 3)
        cpu = min(100.0, max(0.0, cpu))
        mem += rng.randrange(0, 400_000)
        if restarts[k] or rng.random() < 0.01:
            mem = rng.randrange(200_000_000, 400_000_000)
        if bursty:
            if rng.random() < 0.05:
                queue += rng.randrange(50, 300)
            queue = max(0, queue - rng.randrange(0, 40))
        ts = ts_strs[k]
        g_cpu.append('cpu_usage_percent{%s} %s %s\n' % (lab_base, repr(cpu), ts))
        g_mem.append('memory_usage_bytes{%s} %d %s\n' % (lab_base, mem, ts))
        g_q.append('processing_queue_size{%s} %d %s\n' % (lab_base, queue, ts))
        g_up.append('up{%s} 1 %s\n' % (lab_base, ts))
    for f, lines in zip(out_gauge, (g_cpu, g_mem, g_q, g_up)):
        f.write("".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--series", type=int, default=5000,
                   help="approximate series count, rounded up to whole targets of %d series" % SERIES_PER_TARGET)
    p.add_argument("--duration", default="6h")
    p.add_argument("--interval", type=int, default=15, help="scrape interval in seconds")
    p.add_argument("--start", type=int, required=True, help="unix seconds of the first scrape window")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--jitter-prob", type=float, default=0.02)
    p.add_argument("--jitter-ms", type=int, default=25)
    p.add_argument("--restart-every", type=int, default=12 * 3600,
                   help="mean seconds between restarts of a target")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.interval < 2:
        p.error("--interval must be at least 2 s")
    duration = parse_duration(args.duration)
    steps = duration // args.interval
    targets = max(1, -(-args.series // SERIES_PER_TARGET))

    outdir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(outdir, exist_ok=True)
    names = ["req", "hist", "cpu", "mem", "queue", "up"]
    tmps = [tempfile.TemporaryFile("w+", dir=outdir) for _ in names]
    for i in range(targets):
        simulate_target(i, args, steps, tmps[0], tmps[1], tmps[2:])
    headers = [
        "# HELP http_requests Requests served.\n# TYPE http_requests counter\n",
        "# HELP http_request_duration_seconds Request latency.\n"
        "# TYPE http_request_duration_seconds histogram\n",
        "# TYPE cpu_usage_percent gauge\n",
        "# TYPE memory_usage_bytes gauge\n",
        "# TYPE processing_queue_size gauge\n",
        "# TYPE up gauge\n",
    ]
    h = hashlib.sha256()
    tmp_out = args.out + ".tmp"
    with open(tmp_out, "w", encoding="ascii", newline="\n") as out:
        for head, tf in zip(headers, tmps):
            out.write(head)
            h.update(head.encode())
            tf.seek(0)
            while True:
                chunk = tf.read(1 << 22)
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk.encode())
            tf.close()
        out.write("# EOF\n")
        h.update(b"# EOF\n")
    os.replace(tmp_out, args.out)
    series = targets * SERIES_PER_TARGET
    last_ts = args.start * 1000 + (steps - 1) * args.interval * 1000 + args.interval * 1000
    meta = {
        "file": os.path.abspath(args.out),
        "bytes": os.path.getsize(args.out),
        "sha256": h.hexdigest(),
        "targets": targets,
        "series": series,
        "steps": steps,
        "samples": series * steps,
        "start_s": args.start,
        "end_s": args.start + duration,
        "max_ts_ms_bound": last_ts,
        "args": {k: v for k, v in vars(args).items() if k != "out"},
    }
    with open(args.out + ".meta.json", "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
