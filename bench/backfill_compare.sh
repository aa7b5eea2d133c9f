#!/usr/bin/env bash
# Side-by-side backfill of one OpenMetrics file with `aion tsdb create-blocks-from
# openmetrics` and `promtool tsdb create-blocks-from openmetrics`.
#
# usage: bench/backfill_compare.sh [input.om]
#
# Without an input file, one is generated with the shared workload generator
# (GEN, default ../shared/bench/gen_openmetrics.py: 10k series, 6h, 15s) into a
# temporary directory. Environment:
#   AION      aion binary (default: $CARGO_TARGET_DIR/release/aion or target/release/aion;
#             build it first with `cargo build --release`)
#   PROMTOOL  promtool binary (default: promtool on PATH)
#   EXTRA     extra flags for both tools (e.g. --max-block-duration=6h)
#   TIMEOUT   seconds each import may take (default 900)
#
# Each tool writes into its own fresh temporary directory, runs under /usr/bin/time -v
# and `timeout`; everything temporary is removed at exit. Nothing listens on the
# network.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
AION=${AION:-${CARGO_TARGET_DIR:-$here/target}/release/aion}
PROMTOOL=${PROMTOOL:-promtool}
GEN=${GEN:-$here/../shared/bench/gen_openmetrics.py}
EXTRA=${EXTRA:-}
TIMEOUT=${TIMEOUT:-900}

work=$(mktemp -d -t backfill-compare.XXXXXX)
child=""
cleanup() {
    if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
        kill "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

[[ -x "$AION" ]] || { echo "aion binary not found at $AION (cargo build --release)" >&2; exit 2; }
command -v "$PROMTOOL" >/dev/null || { echo "promtool not found" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time not found (apt-get install time)" >&2; exit 2; }

input=${1:-}
if [[ -z "$input" ]]; then
    [[ -f "$GEN" ]] || { echo "no input file and no generator at $GEN" >&2; exit 2; }
    input=$work/w.om
    echo "generating $input ..." >&2
    python3 "$GEN" --out "$input" --no-sha256 >/dev/null
fi
[[ -f "$input" ]] || { echo "input $input not found" >&2; exit 2; }

# Warm the page cache so both tools read the input from memory.
cat "$input" >/dev/null

run() { # name command...
    local name=$1; shift
    local out=$work/out-$name
    mkdir -p "$out"
    timeout "$TIMEOUT" /usr/bin/time -v "$@" "$input" "$out" >"$work/$name.stdout" 2>"$work/$name.time" &
    child=$!
    wait "$child" || { echo "$name failed:" >&2; tail -20 "$work/$name.time" >&2; exit 1; }
    child=""
}

# shellcheck disable=SC2086
run aion "$AION" tsdb create-blocks-from $EXTRA -q openmetrics
# shellcheck disable=SC2086
run promtool "$PROMTOOL" tsdb create-blocks-from $EXTRA -q openmetrics

python3 - "$work" <<'PY'
import json, os, re, sys
work = sys.argv[1]

def timing(name):
    t = open(os.path.join(work, name + ".time")).read()
    def f(key):
        return re.search(re.escape(key) + r"\s*(\S+)", t).group(1)
    wall = f("Elapsed (wall clock) time (h:mm:ss or m:ss):")
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    cpu = float(f("User time (seconds):")) + float(f("System time (seconds):"))
    rss = int(f("Maximum resident set size (kbytes):")) / 1024
    return secs, cpu, rss

def store(name):
    root = os.path.join(work, "out-" + name)
    samples = total = chunks = blocks = 0
    for b in os.listdir(root):
        d = os.path.join(root, b)
        meta = os.path.join(d, "meta.json")
        if not os.path.isfile(meta):
            continue
        blocks += 1
        samples += json.load(open(meta))["stats"]["numSamples"]
        for dirpath, _, files in os.walk(d):
            for fn in files:
                size = os.path.getsize(os.path.join(dirpath, fn))
                total += size
                if os.path.basename(dirpath) == "chunks":
                    chunks += size
    return samples, total, chunks, blocks

rows = {}
for name in ("aion", "promtool"):
    wall, cpu, rss = timing(name)
    samples, total, chunks, blocks = store(name)
    rows[name] = dict(wall=wall, cpu=cpu, rss=rss, samples=samples, total=total,
                      chunks=chunks, blocks=blocks)
    print(f"{name:9s} samples={samples} blocks={blocks} wall={wall:.2f}s cpu={cpu:.2f}s "
          f"peak_rss={rss:.0f}MiB samples/s={samples / wall / 1e6:.3f}M "
          f"samples/cpu-s={samples / cpu / 1e6:.3f}M "
          f"bytes/sample total={total / samples:.3f} chunks={chunks / samples:.3f}")
a, p = rows["aion"], rows["promtool"]
print(f"ratio aion/promtool: samples/s x{(a['samples'] / a['wall']) / (p['samples'] / p['wall']):.2f}, "
      f"samples/cpu-s x{(a['samples'] / a['cpu']) / (p['samples'] / p['cpu']):.2f}, "
      f"bytes/sample total {(a['total'] / a['samples']) / (p['total'] / p['samples']):.3f}, "
      f"chunks {(a['chunks'] / a['samples']) / (p['chunks'] / p['samples']):.3f}")
PY
