#!/usr/bin/env python3
"""Side-by-side benchmark of Aion against Prometheus (standard library only).

One command: installs Debian's prometheus/promtool and GNU time when missing, builds Aion in
release mode, generates the deterministic workload (gen_workload.py) and measures both
systems on the same data, interleaved, over several repetitions:

1. backfill (`create-blocks-from openmetrics`): samples/s, CPU seconds, peak RSS;
2. disk: bytes per sample of the fully compacted data (one block over the whole range),
   chunks and index separately;
3. queries over the HTTP API (POST form, as Grafana sends them): instant and 6 h range at
   two steps, median and p90 latency, and a result comparison (relative 1e-9);
4. scrape ingestion of the same fake targets: CPU seconds per million samples and resident
   memory per active series;
5. restart: time from start to `/-/ready` with a large WAL, after a clean stop and after
   SIGKILL, each start on a fresh copy of the same stopped store, the systems taking turns.

Prints a table of medians with Aion/Prometheus ratios and writes the full results as JSON in
the work directory. All traffic stays on 127.0.0.1; every process started is stopped by PID,
also on errors and Ctrl-C.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from queries import QUERIES  # noqa: E402

PROCS = []  # every Popen we started, stopped by PID at exit


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=60):
    """Stops one process we started (by PID); returns its exit code."""
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    if p in PROCS:
        PROCS.remove(p)
    return p.returncode


def stop_all(*_):
    for p in list(PROCS):
        try:
            stop(p, timeout=10)
        except Exception:  # keep stopping the others
            pass


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # as servers do: a port whose old connections linger in TIME_WAIT is free
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def require_ports(ports):
    busy = [p for p in ports if not port_free(p)]
    if busy:
        raise SystemExit("ports in use on 127.0.0.1: %s (free them or pass --port-base)" % busy)


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick  # utime + stime


def proc_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------- HTTP


class Client:
    """Keep-alive HTTP client to one loopback server."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, timeout=300):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                headers = {}
                if body is not None:
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")

    def query(self, params):
        path = "/api/v1/query_range" if "step" in params else "/api/v1/query"
        body = urllib.parse.urlencode(params)
        t0 = time.perf_counter()
        status, data = self.request("POST", path, body)
        return time.perf_counter() - t0, status, data

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def wait_ready(port, proc, timeout=600, interval=0.01):
    """Seconds until GET /-/ready answers 200 (polling); raises when the process exits."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("process exited with %s before it was ready" % proc.returncode)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/-/ready")
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(interval)
    raise RuntimeError("not ready after %s s" % timeout)


def metric_value(port, name):
    c = Client(port)
    try:
        status, data = c.request("GET", "/metrics", timeout=10)
    finally:
        c.close()
    if status != 200:
        return None
    total = None
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1] if "}" not in line
                                           else line.split("}", 1)[1].split()[0])
    return total


def scalar_query(port, expr):
    c = Client(port)
    try:
        _, status, data = c.query({"query": expr})
    finally:
        c.close()
    if status != 200:
        return None
    res = json.loads(data)["data"]["result"]
    if not res:
        return None
    return float(res[0]["value"][1])


# ---------------------------------------------------------------- setup


def sh(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def ensure_tools():
    missing = [pkg for pkg, path in (("prometheus", "/usr/bin/promtool"),
                                     ("prometheus", "/usr/bin/prometheus"),
                                     ("time", "/usr/bin/time")) if not os.path.exists(path)]
    if not missing:
        return
    pkgs = sorted(set(missing))
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    # keep the package's service from starting (it would listen on 0.0.0.0:9090)
    policy = "/usr/sbin/policy-rc.d"
    created = False
    if not os.path.exists(policy):
        sh(sudo + ["sh", "-c", "printf '#!/bin/sh\\nexit 101\\n' > %s && chmod 755 %s" % (policy, policy)])
        created = True
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sh(sudo + ["apt-get", "update"], env=env)
        sh(sudo + ["apt-get", "install", "-y", "--no-install-recommends"] + pkgs, env=env)
    finally:
        if created:
            sh(sudo + ["rm", "-f", policy])


def build_aion(args, work):
    """Builds the release binary and copies it into the work directory (a later build of
    another checkout into the same target directory must not change it mid-run)."""
    if args.aion:
        return args.aion
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    if not args.skip_build:
        sh(["cargo", "build", "--release", "--bin", "aion"], cwd=REPO)
    dst = os.path.join(work, "aion")
    shutil.copy2(os.path.join(target, "release", "aion"), dst)
    return dst


def version_of(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return {"cores": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version(), "commit": commit + ("+dirty" if dirty else ""),
            "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")}


# ---------------------------------------------------------------- 0. workload


def block_span(span_s):
    """The span rounded up to whole 2 h: one block of this span holds the whole workload."""
    return -(-span_s // 7200) * 7200


def gen_workload(args, work):
    # Recent data, so that neither system's time retention (15 d by default) drops it; the
    # start is aligned to the block span so that the full range is one compacted block.
    span = args.duration_s
    align = block_span(span)
    start = ((int(time.time()) - 2 * 86400) // align) * align if args.start is None else args.start
    om = os.path.join(work, "workload-s%d-d%d-i%d-seed%d-t%d.om" % (
        args.series, span, args.interval, args.seed, start))
    if not os.path.exists(om + ".meta.json"):
        sh([sys.executable, os.path.join(HERE, "gen_workload.py"), "--series", str(args.series),
            "--duration", "%ds" % span, "--interval", str(args.interval), "--seed",
            str(args.seed), "--start", str(start), "--out", om], stdout=subprocess.DEVNULL)
    with open(om + ".meta.json") as f:
        return json.load(f)


# ---------------------------------------------------------------- 1/2. backfill + disk


def parse_time_v(text):
    def grab(label):
        m = re.search(r"^\s*" + re.escape(label) + r": (.+)$", text, re.M)
        return m.group(1).strip() if m else None

    wall = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return {"wall_s": secs, "cpu_s": float(grab("User time (seconds)")) + float(
        grab("System time (seconds)")), "peak_rss_bytes": int(grab("Maximum resident set size (kbytes)")) * 1024}


def dir_bytes(d):
    chunks = index = other = 0
    for root, _, files in os.walk(d):
        for fn in files:
            p = os.path.join(root, fn)
            size = os.path.getsize(p)
            if os.path.basename(root) == "chunks":
                chunks += size
            elif fn == "index":
                index += size
            else:
                other += size
    return {"chunks": chunks, "index": index, "other": other, "total": chunks + index + other}


def import_cmd(system, binary, om, out, extra=()):
    if system == "prometheus":
        return ["/usr/bin/promtool", "tsdb", "create-blocks-from", "openmetrics", *extra, om, out]
    return [binary, "tsdb", "create-blocks-from", "openmetrics", "--quiet", *extra, om, out]


def run_import(system, binary, om, out, work, extra=()):
    shutil.rmtree(out, ignore_errors=True)
    tv = os.path.join(work, "time-v.txt")
    cmd = ["/usr/bin/time", "-v", "-o", tv] + import_cmd(system, binary, om, out, extra)
    p = spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = p.communicate()
    PROCS.remove(p)
    if p.returncode != 0:
        raise RuntimeError("%s import failed (%s): %s" % (system, p.returncode, err.decode()[-2000:]))
    with open(tv) as f:
        r = parse_time_v(f.read())
    r["blocks"] = len([d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d))])
    r["bytes"] = dir_bytes(out)
    return r


def bench_backfill(args, work, meta, binary, res):
    om = meta["file"]
    samples = meta["samples"]
    runs = {"prometheus": [], "aion": []}
    # warm the page cache for the input so that neither side pays for the first read
    with open(om, "rb") as f:
        while f.read(1 << 24):
            pass
    for rep in range(args.reps):
        order = ["prometheus", "aion"] if rep % 2 == 0 else ["aion", "prometheus"]
        for system in order:
            out = os.path.join(work, "store-%s" % system)
            r = run_import(system, binary, om, out, work)
            r["samples_per_s"] = samples / r["wall_s"]
            runs[system].append(r)
            log("backfill %s rep %d: %.2f s wall, %.2f CPU s, %d samples/s, peak RSS %.0f MiB" % (
                system, rep, r["wall_s"], r["cpu_s"], r["samples_per_s"], r["peak_rss_bytes"] / 2**20))
    res["backfill"] = runs
    # disk: the fully compacted layout is one block over the whole range
    span = "%ds" % block_span(meta["end_s"] - meta["start_s"])
    disk = {}
    for system in ("prometheus", "aion"):
        out = os.path.join(work, "store-%s-compacted" % system)
        r = run_import(system, binary, om, out, work, extra=["--max-block-duration=" + span])
        b = r["bytes"]
        disk[system] = {"blocks": r["blocks"], "bytes": b,
                        "bytes_per_sample": b["total"] / samples,
                        "chunk_bytes_per_sample": b["chunks"] / samples,
                        "index_bytes_per_sample": b["index"] / samples}
        log("disk %s: %d block(s), %.3f B/sample (chunks %.3f, index %.3f)" % (
            system, r["blocks"], disk[system]["bytes_per_sample"],
            disk[system]["chunk_bytes_per_sample"], disk[system]["index_bytes_per_sample"]))
    res["disk"] = disk


# ---------------------------------------------------------------- servers


def server_cmd(system, binary, data, port, config):
    if system == "prometheus":
        return ["/usr/bin/prometheus", "--config.file=" + config, "--storage.tsdb.path=" + data,
                "--web.listen-address=127.0.0.1:%d" % port, "--storage.tsdb.retention.time=3650d",
                "--log.level=warn"]
    return [binary, "--config.file=" + config, "--storage.tsdb.path=" + data,
            "--web.listen-address=127.0.0.1:%d" % port, "--storage.tsdb.retention.time=3650d",
            "--log.level=warn"]


def write_config(path, interval_s=15, targets=()):
    lines = ["global:", "  scrape_interval: %ds" % interval_s,
             "  scrape_timeout: %ds" % interval_s, "scrape_configs:"]
    if targets:
        lines += ["  - job_name: fake", "    static_configs:", "      - targets:"]
        lines += ["          - '%s'" % t for t in targets]
    else:
        lines[-1] = "scrape_configs: []"
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start_server(system, binary, data, port, config, work, tag):
    logf = open(os.path.join(work, "%s-%s.log" % (system, tag)), "ab")
    p = spawn(server_cmd(system, binary, data, port, config), stdout=logf, stderr=logf)
    logf.close()
    return p


# ---------------------------------------------------------------- 3. queries


def canon(data):
    """Result of a query as {labels: [(t, v), ...]} (or a scalar/string as a 1-entry dict)."""
    doc = json.loads(data)
    if doc.get("status") != "success":
        return {"__error__": [(0, doc.get("error", "?"))]}
    d = doc["data"]
    rt = d["resultType"]
    if rt in ("scalar", "string"):
        return {"__%s__" % rt: [(d["result"][0], d["result"][1])]}
    out = {}
    for s in d["result"]:
        key = tuple(sorted(s["metric"].items()))
        pts = s.get("values") or ([s["value"]] if "value" in s else [])
        out[key] = [(p[0], p[1]) for p in pts]
    return out


def same_value(a, b, rel=1e-9):
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if x != x and y != y:
        return True
    return abs(x - y) <= rel * max(abs(x), abs(y))


def compare(prom, aion, name):
    """None when equal; else a short description of the first difference."""
    if set(prom) != set(aion):
        only_p = sorted(set(prom) - set(aion))[:2]
        only_a = sorted(set(aion) - set(prom))[:2]
        return "%s: series differ: %d vs %d; only in prometheus %s; only in aion %s" % (
            name, len(prom), len(aion), only_p, only_a)
    for key in sorted(prom):
        p, a = prom[key], aion[key]
        if len(p) != len(a):
            tp = {x[0] for x in p}
            ta = {x[0] for x in a}
            return "%s %s: %d vs %d points; t only in prometheus %s, only in aion %s" % (
                name, dict(key), len(p), len(a), sorted(tp - ta)[:3], sorted(ta - tp)[:3])
        for (tp_, vp), (ta_, va) in zip(p, a):
            if tp_ != ta_ or not same_value(vp, va):
                return "%s %s at t=%s: prometheus %s, aion %s" % (name, dict(key), tp_, vp, va)
    return None


def bench_queries(args, work, meta, binary, res, ports):
    config = write_config(os.path.join(work, "empty.yml"))
    end = meta["end_s"]
    modes = [("instant", {"time": str(end)})]
    for step in args.steps:
        modes.append(("range_%ds" % step, {"start": str(end - args.query_range_s), "end": str(end),
                                             "step": str(step)}))
    servers = {}
    for i, system in enumerate(("prometheus", "aion")):
        data = os.path.join(work, "serve-%s" % system)
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(os.path.join(work, "store-%s" % system), data)
        p = start_server(system, binary, data, ports[i], config, work, "query")
        servers[system] = (p, ports[i])
    try:
        for system, (p, port) in servers.items():
            log("%s serving on 127.0.0.1:%d after %.2f s" % (system, port, wait_ready(port, p)))
        clients = {s: Client(port) for s, (_, port) in servers.items()}
        rss_before = {s: proc_rss(p.pid) for s, (p, _) in servers.items()}
        cpu_before = {s: proc_cpu_s(p.pid) for s, (p, _) in servers.items()}
        out = []
        for name, expr in QUERIES:
            for mode, params in modes:
                q = dict(params, query=expr)
                lat = {"prometheus": [], "aion": []}
                bodies = {}
                for rep in range(args.query_warmup + args.query_reps):
                    order = ("prometheus", "aion") if rep % 2 == 0 else ("aion", "prometheus")
                    for system in order:
                        dt, status, data = clients[system].query(q)
                        if rep < args.query_warmup:
                            bodies[system] = (status, data)
                        else:
                            lat[system].append(dt)
                entry = {"name": name, "mode": mode, "expr": expr}
                for system in ("prometheus", "aion"):
                    v = sorted(lat[system])
                    entry[system] = {"median_s": statistics.median(v),
                                     "p90_s": v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))],
                                     "status": bodies[system][0], "bytes": len(bodies[system][1])}
                cp, ca = canon(bodies["prometheus"][1]), canon(bodies["aion"][1])
                entry["prometheus"]["series"] = len(cp)
                entry["aion"]["series"] = len(ca)
                entry["prometheus"]["points"] = sum(len(x) for x in cp.values())
                entry["aion"]["points"] = sum(len(x) for x in ca.values())
                entry["mismatch"] = compare(cp, ca, "%s/%s" % (name, mode))
                entry["ratio_median"] = entry["aion"]["median_s"] / entry["prometheus"]["median_s"]
                out.append(entry)
                log("query %-24s %-10s prom %7.1f ms  aion %7.1f ms  ratio %.2f  %s" % (
                    name, mode, entry["prometheus"]["median_s"] * 1e3, entry["aion"]["median_s"] * 1e3,
                    entry["ratio_median"], "OK" if entry["mismatch"] is None else "MISMATCH"))
                if entry["mismatch"]:
                    log("  " + entry["mismatch"][:400])
        res["queries"] = out
        res["query_process"] = {
            s: {"rss_after_start": rss_before[s], "rss_after_queries": proc_rss(p.pid),
                "cpu_s": proc_cpu_s(p.pid) - cpu_before[s]} for s, (p, _) in servers.items()}
        for c in clients.values():
            c.close()
    finally:
        for p, _ in servers.values():
            stop(p)


# ---------------------------------------------------------------- 4. scrape


def start_exporter(args, work, targets, series, base_port, max_seconds):
    ready = os.path.join(work, "exporter.ready")
    if os.path.exists(ready):
        os.remove(ready)
    p = spawn([sys.executable, os.path.join(HERE, "fake_exporter.py"), "--targets", str(targets),
               "--series", str(series), "--base-port", str(base_port), "--max-seconds",
               str(max_seconds), "--ready-file", ready])
    t0 = time.time()
    while not os.path.exists(ready):
        if p.poll() is not None or time.time() - t0 > 120:
            raise RuntimeError("fake exporter did not start")
        time.sleep(0.05)
    return p


def scraped_series(port):
    try:
        return scalar_query(port, 'count({job="fake"})')
    except (OSError, ValueError, KeyError):
        return None


def start_scraping(args, work, binary, system, port, exp_ports, tag):
    """Starts `system` on an empty store `<work>/<tag>-<system>`, scraping the fake
    targets on `exp_ports`. Returns the store directory and the process."""
    data = os.path.join(work, "%s-%s" % (tag, system))
    shutil.rmtree(data, ignore_errors=True)
    config = write_config(os.path.join(work, "%s.yml" % tag), args.scrape_interval,
                          ["127.0.0.1:%d" % p for p in exp_ports])
    return data, start_server(system, binary, data, port, config, work, tag)


def scrape_one(args, work, binary, system, port, exp_ports):
    _, p = start_scraping(args, work, binary, system, port, exp_ports, "scrape")
    try:
        wait_ready(port, p)
        time.sleep(args.scrape_warmup)
        expected = args.scrape_targets * args.scrape_series
        n = scraped_series(port)
        if not n:
            return {"pending": "no series with job=\"fake\" after %d s: scraping not available" %
                    args.scrape_warmup}
        appended0 = metric_value(port, "prometheus_tsdb_head_samples_appended_total")
        cpu0, t0 = proc_cpu_s(p.pid), time.time()
        time.sleep(args.scrape_window)
        cpu1, t1 = proc_cpu_s(p.pid), time.time()
        appended1 = metric_value(port, "prometheus_tsdb_head_samples_appended_total")
        rss = proc_rss(p.pid)
        head_series = metric_value(port, "prometheus_tsdb_head_series")
        active = scraped_series(port)
        if appended0 is not None and appended1 is not None:
            samples, source = appended1 - appended0, "prometheus_tsdb_head_samples_appended_total"
        else:  # no self-metric: active series times the scrapes in the window
            samples = (active or 0) * (t1 - t0) / args.scrape_interval
            source = "estimated from active series and the window"
        r = {"window_s": t1 - t0, "cpu_s": cpu1 - cpu0, "samples": samples,
             "samples_source": source, "expected_series": expected,
             "active_series_fake": active, "head_series": head_series, "rss_bytes": rss}
        r["cpu_s_per_million_samples"] = r["cpu_s"] / samples * 1e6 if samples else None
        r["rss_bytes_per_series"] = rss / head_series if head_series else (rss / active if active else None)
        return r
    finally:
        stop(p)


def bench_scrape(args, work, binary, res, ports):
    exp_ports = list(range(ports[2], ports[2] + args.scrape_targets))
    require_ports(exp_ports)
    runs = {"prometheus": [], "aion": []}
    per_run = args.scrape_warmup + args.scrape_window + 30
    exp = start_exporter(args, work, args.scrape_targets, args.scrape_series, exp_ports[0],
                         per_run * 2 * args.scrape_reps + 120)
    try:
        for rep in range(args.scrape_reps):
            order = ("prometheus", "aion") if rep % 2 == 0 else ("aion", "prometheus")
            for system in order:
                r = scrape_one(args, work, binary, system, ports[0], exp_ports)
                runs[system].append(r)
                log("scrape %s rep %d: %s" % (system, rep, json.dumps(r)))
    finally:
        stop(exp)
    res["scrape"] = runs


# ---------------------------------------------------------------- 5. restart


def fill_for_restart(args, work, binary, system, port, exp_ports, fill_s):
    """Scrapes the fake targets until the head holds the wanted samples, then stops the
    server cleanly. Returns facts about the head, or a "pending" entry."""
    data, p = start_scraping(args, work, binary, system, port, exp_ports, "restart")
    try:
        wait_ready(port, p)
        t0 = time.time()
        n = None
        while time.time() - t0 < fill_s + 30:
            time.sleep(1)
            n = scraped_series(port)
            if not n and time.time() - t0 > 15:
                break
            got = metric_value(port, "prometheus_tsdb_head_samples_appended_total") or 0
            if n and got >= args.restart_samples:
                break
        log("restart %s: %s fake series in the head after %.0f s" % (system, n, time.time() - t0))
        appended = metric_value(port, "prometheus_tsdb_head_samples_appended_total")
    finally:
        stop(p)
    if not n:
        log("restart %s: pending (no scraping)" % system)
        return {"pending": "no scraped series: the head cannot be filled without scraping"}
    return {"head_samples_appended": appended, "fake_series": n,
            "wal_bytes": dir_bytes(os.path.join(data, "wal"))["total"]}


def copy_store(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    os.sync()


# The line each server logs (at info level) when it starts answering /-/ready with 200.
READY_LINE = re.compile(rb"[Ss]erver is ready to receive web requests")


def timed_start(system, binary, data, port, cfg, work):
    """Starts a server on `data`. Returns (seconds from exec to its "ready" log line,
    series it serves, process). Watching the log rather than polling /-/ready keeps the
    measuring client from taking CPU that the replay needs: on 2 cores, polling every 2 ms
    made Aion's replay about 15% slower, and polling every 10 ms adds up to 10 ms."""
    cmd = [a if a != "--log.level=warn" else "--log.level=info"
           for a in server_cmd(system, binary, data, port, cfg)]
    logf = open(os.path.join(work, "%s-restart.log" % system), "ab")
    ready_at = []
    seen = threading.Event()
    t0 = time.perf_counter()
    p = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def pump():
        for line in p.stdout:
            if not ready_at and READY_LINE.search(line):
                ready_at.append(time.perf_counter())
                seen.set()
            logf.write(line)
        logf.close()
        seen.set()

    threading.Thread(target=pump, daemon=True).start()
    seen.wait(600)
    if not ready_at:
        stop(p)
        raise RuntimeError("%s did not log that it was ready" % system)
    wait_ready(port, p)  # the API agrees
    return ready_at[0] - t0, scraped_series(port), p


def bench_restart(args, work, binary, res, ports):
    exp_ports = list(range(ports[2], ports[2] + args.restart_targets))
    require_ports(exp_ports)
    # enough scrapes that the head holds the wanted number of samples
    per_scrape = args.restart_targets * args.restart_series
    scrapes = -(-args.restart_samples // per_scrape)
    fill_s = scrapes * args.scrape_interval + args.scrape_interval + 3
    out = {}
    exp = start_exporter(args, work, args.restart_targets, args.restart_series, exp_ports[0],
                         2 * fill_s + 600)
    try:
        for system in ("prometheus", "aion"):
            out[system] = fill_for_restart(args, work, binary, system, ports[0], exp_ports, fill_s)
    finally:
        stop(exp)
    # no new scrapes while restarting: the servers get a config without targets
    empty = write_config(os.path.join(work, "empty.yml"))
    systems = [s for s in ("prometheus", "aion") if "pending" not in out[s]]
    # The state a kill -9 leaves: a copy of the stopped store, started, replayed and killed.
    for system in systems:
        k9 = os.path.join(work, "restart-%s-kill9" % system)
        copy_store(os.path.join(work, "restart-%s" % system), k9)
        _, _, p = timed_start(system, binary, k9, ports[0], empty, work)
        stop(p, signal.SIGKILL)
    # Every start runs on a fresh copy of one of the two states, the systems taking turns,
    # so that both meet the same page cache and the same machine load.
    run_dir = os.path.join(work, "restart-run")
    for rep in range(args.restart_reps):
        order = systems if rep % 2 == 0 else systems[::-1]
        for system in order:
            r = out[system]
            for key, state in (("ready_after_clean_stop_s", "restart-%s" % system),
                               ("ready_after_kill9_s", "restart-%s-kill9" % system)):
                copy_store(os.path.join(work, state), run_dir)
                ready, series, p = timed_start(system, binary, run_dir, ports[0], empty, work)
                stop(p, signal.SIGKILL)
                r.setdefault(key + "_runs", []).append(ready)
                r.setdefault(key.replace("ready", "series")[:-2] + "_runs", []).append(series)
    shutil.rmtree(run_dir, ignore_errors=True)
    for system in systems:
        r = out[system]
        for key in ("ready_after_clean_stop_s", "ready_after_kill9_s"):
            r[key] = med(r.get(key + "_runs", []))
        log("restart %s: %s" % (system, json.dumps(r)))
    res["restart"] = out


# ---------------------------------------------------------------- report


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarize(res):
    rows = []

    def add(measure, p, a, goal, lower_is_better=True):
        ratio = a / p if (p and a is not None) else None
        ok = None
        if ratio is not None and goal is not None:
            ok = ratio <= goal if lower_is_better else ratio >= goal
        rows.append({"measure": measure, "prometheus": p, "aion": a, "ratio": ratio,
                     "goal": goal, "lower_is_better": lower_is_better, "met": ok})

    bf = res.get("backfill")
    if bf:
        add("backfill samples/s", med(r["samples_per_s"] for r in bf["prometheus"]),
            med(r["samples_per_s"] for r in bf["aion"]), 10.0, False)
        add("backfill CPU s", med(r["cpu_s"] for r in bf["prometheus"]),
            med(r["cpu_s"] for r in bf["aion"]), None)
        add("backfill peak RSS MiB", med(r["peak_rss_bytes"] / 2**20 for r in bf["prometheus"]),
            med(r["peak_rss_bytes"] / 2**20 for r in bf["aion"]), None)
    dk = res.get("disk")
    if dk:
        add("disk bytes/sample (compacted)", dk["prometheus"]["bytes_per_sample"],
            dk["aion"]["bytes_per_sample"], 0.8)
        add("  chunks bytes/sample", dk["prometheus"]["chunk_bytes_per_sample"],
            dk["aion"]["chunk_bytes_per_sample"], None)
        add("  index bytes/sample", dk["prometheus"]["index_bytes_per_sample"],
            dk["aion"]["index_bytes_per_sample"], None)
    qs = res.get("queries")
    if qs:
        ratios = [q["ratio_median"] for q in qs]
        add("query latency ms (median of medians)", med(q["prometheus"]["median_s"] * 1e3 for q in qs),
            med(q["aion"]["median_s"] * 1e3 for q in qs), None)
        rows.append({"measure": "query latency: median of ratios", "ratio": statistics.median(ratios),
                     "goal": 0.33, "lower_is_better": True, "met": statistics.median(ratios) <= 0.33})
        rows.append({"measure": "query latency: worst ratio", "ratio": max(ratios), "goal": 1.0,
                     "lower_is_better": True, "met": max(ratios) <= 1.0})
        bad = sum(1 for q in qs if q["mismatch"])
        rows.append({"measure": "query results identical", "text": "%d of %d" % (len(qs) - bad, len(qs))})
    sc = res.get("scrape")
    if sc:
        pend = [r["pending"] for r in sc["aion"] if "pending" in r]
        pm = [r for r in sc["prometheus"] if "pending" not in r]
        if pend:
            rows.append({"measure": "scrape CPU s / 1M samples", "prometheus": med(
                r["cpu_s_per_million_samples"] for r in pm), "text": "aion: pending (" + pend[0] + ")"})
            rows.append({"measure": "RSS bytes / active series", "prometheus": med(
                r["rss_bytes_per_series"] for r in pm), "text": "aion: pending"})
        else:
            add("scrape CPU s / 1M samples", med(r["cpu_s_per_million_samples"] for r in pm),
                med(r["cpu_s_per_million_samples"] for r in sc["aion"]), 0.4)
            add("RSS bytes / active series", med(r["rss_bytes_per_series"] for r in pm),
                med(r["rss_bytes_per_series"] for r in sc["aion"]), 0.33)
    rs = res.get("restart")
    if rs:
        p, a = rs.get("prometheus", {}), rs.get("aion", {})
        for key, label in (("ready_after_clean_stop_s", "restart to ready s (clean stop)"),
                           ("ready_after_kill9_s", "restart to ready s (kill -9)")):
            if "pending" in a or "pending" in p:
                rows.append({"measure": label, "prometheus": p.get(key),
                             "text": "aion: pending" if "pending" in a else "prometheus: pending"})
            else:
                add(label, p.get(key), a.get(key), 0.2)
    return rows


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return "{:,.0f}".format(v)
        return "%.3g" % v if abs(v) < 10 else "%.1f" % v
    return str(v)


def print_table(rows, out=sys.stdout):
    print("| measure | Prometheus | Aion | Aion/Prometheus | goal | met |", file=out)
    print("| --- | --- | --- | --- | --- | --- |", file=out)
    for r in rows:
        goal = "-" if r.get("goal") is None else ("%s %g" % ("≤" if r["lower_is_better"] else "≥", r["goal"]))
        met = {True: "yes", False: "NO", None: "-"}[r.get("met")]
        if "text" in r and "aion" not in r:
            print("| %s | %s | %s | - | %s | - |" % (r["measure"], fmt(r.get("prometheus")), r["text"], goal),
                  file=out)
            continue
        ratio = "-" if r.get("ratio") is None else "%.3f" % r["ratio"]
        print("| %s | %s | %s | %s | %s | %s |" % (r["measure"], fmt(r.get("prometheus")), fmt(r.get("aion")),
                                                  ratio, goal, met), file=out)


def print_queries(qs, out=sys.stdout):
    print("\n| query | mode | Prometheus median / p90 ms | Aion median / p90 ms | ratio | series | same result |",
          file=out)
    print("| --- | --- | --- | --- | --- | --- | --- |", file=out)
    for q in qs:
        p, a = q["prometheus"], q["aion"]
        print("| %s | %s | %.1f / %.1f | %.1f / %.1f | %.2f | %d / %d | %s |" % (
            q["name"], q["mode"], p["median_s"] * 1e3, p["p90_s"] * 1e3, a["median_s"] * 1e3,
            a["p90_s"] * 1e3, q["ratio_median"], p["series"], a["series"],
            "yes" if q["mismatch"] is None else "NO"), file=out)


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description="Aion vs Prometheus side-by-side benchmark")
    ap.add_argument("--quick", action="store_true", help="small sizes, finishes in under 3 minutes")
    ap.add_argument("--work", default=os.environ.get("AION_BENCH_WORK", "/tmp/aion-bench"),
                    help="work directory (datasets, stores, logs, results.json)")
    ap.add_argument("--aion", help="use this aion binary instead of building one")
    ap.add_argument("--skip-build", action="store_true", help="use the existing release binary")
    ap.add_argument("--only", default="backfill,queries,scrape,restart",
                    help="comma-separated subset of backfill,queries,scrape,restart")
    ap.add_argument("--series", type=int, help="approximate series in the workload")
    ap.add_argument("--duration", help="time span of the workload (e.g. 6h)")
    ap.add_argument("--interval", type=int, default=15, help="workload scrape interval (s)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--start", type=int, help="workload start (unix s); default: recent, aligned")
    ap.add_argument("--reps", type=int, help="backfill repetitions")
    ap.add_argument("--query-reps", type=int, help="timed repetitions per query")
    ap.add_argument("--port-base", type=int, default=19190)
    ap.add_argument("--scrape-targets", type=int)
    ap.add_argument("--scrape-series", type=int)
    ap.add_argument("--scrape-window", type=int, help="measured seconds per scrape run")
    ap.add_argument("--restart-samples", type=int, help="samples to put in the head before restarts")
    args = ap.parse_args()

    q = args.quick
    # one hour more data than the 6 h query range, so that no query window reaches back to
    # the first sample (rate's extrapolation at the start of a series changed between
    # Prometheus 2.x and 3.x; Aion follows 3.x)
    dflt = {"series": 600 if q else 5000, "duration": "7h", "reps": 2 if q else 3,
            "query_reps": 3 if q else 5, "scrape_targets": 4 if q else 10,
            "scrape_series": 1000 if q else 5000, "scrape_window": 15 if q else 60,
            "restart_samples": 200_000 if q else 1_000_000}
    for k, v in dflt.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    from gen_workload import parse_duration
    args.duration_s = parse_duration(args.duration)
    args.query_range_s = min(6 * 3600, max(args.duration_s - 3600, 600))
    args.steps = [60] if q else [60, 30]
    args.query_warmup = 1
    args.scrape_interval = 1 if q else 5
    args.scrape_warmup = 6 if q else 15
    args.scrape_reps = 1
    args.restart_targets = 10
    args.restart_series = 10_000 if not q else 5_000
    args.restart_reps = 3 if q else 5
    sections = set(args.only.split(","))

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    work = os.path.abspath(args.work)
    if os.path.commonpath([work, REPO]) == REPO:
        raise SystemExit("--work must be outside the repository")
    os.makedirs(work, exist_ok=True)
    ports = [args.port_base, args.port_base + 1, args.port_base + 10]
    require_ports(ports[:2])
    t_start = time.time()
    res = {"argv": sys.argv[1:], "machine": machine_info()}
    try:
        ensure_tools()
        binary = os.path.abspath(build_aion(args, work))
        res["versions"] = {"prometheus": version_of(["/usr/bin/prometheus", "--version"]),
                           "promtool": version_of(["/usr/bin/promtool", "--version"]),
                           "aion": version_of([binary, "--version"])}
        meta = gen_workload(args, work)
        res["workload"] = meta
        log("workload: %d series, %d samples, %.0f MiB, sha256 %s" % (
            meta["series"], meta["samples"], meta["bytes"] / 2**20, meta["sha256"]))
        if "backfill" in sections or "queries" in sections:
            if "backfill" in sections or not os.path.isdir(os.path.join(work, "store-aion")):
                bench_backfill(args, work, meta, binary, res)
        if "queries" in sections:
            bench_queries(args, work, meta, binary, res, ports)
        if "scrape" in sections:
            bench_scrape(args, work, binary, res, ports)
        if "restart" in sections:
            bench_restart(args, work, binary, res, ports)
    finally:
        stop_all()
        res["elapsed_s"] = time.time() - t_start
        res["summary"] = summarize(res)
        out = os.path.join(work, "results-%s.json" % time.strftime("%Y%m%dT%H%M%S"))
        with open(out, "w") as f:
            json.dump(res, f, indent=1, default=str)
        print()
        print("Aion vs Prometheus, %s, %s cores (%s), commit %s, %.0f s" % (
            res["machine"]["date_utc"], res["machine"]["cores"], res["machine"]["cpu_model"],
            res["machine"]["commit"], res["elapsed_s"]))
        if "workload" in res:
            w = res["workload"]
            print("workload: %d series x %ds @%ss = %d samples (sha256 %s)\n" % (
                w["series"], w["end_s"] - w["start_s"], w["args"]["interval"], w["samples"],
                w["sha256"][:16]))
        print_table(res["summary"])
        if res.get("queries"):
            print_queries(res["queries"])
        print("\nJSON: %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
