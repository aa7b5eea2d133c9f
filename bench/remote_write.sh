#!/bin/sh
# Remote write ingestion, Aion against Prometheus, on loopback: one command.
#   bench/remote_write.sh [--requests=600] [--rounds=6] [--connections=2] [--series=500] [--samples=4]
# Builds Aion and the load generator (examples/remote_write_load.rs) in release mode,
# starts `aion` and `prometheus --web.enable-remote-write-receiver` (Debian's 2.42) with
# empty configurations in a temporary work directory, sends both the same requests
# (2,000 samples of 500 series each, advancing timestamps), alternating between them,
# and prints samples/s and CPU seconds per million samples of each server process.
# Environment: WORK (work directory, default a new one under /tmp), PORT_BASE (19290).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
prom=$(command -v prometheus || true)
if [ -z "$prom" ]; then
    echo "prometheus not found (Debian: apt-get install prometheus)" >&2
    exit 1
fi
work=${WORK:-$(mktemp -d /tmp/aion-rw-bench.XXXXXX)}
mkdir -p "$work"
base=${PORT_BASE:-19290}
aion_addr=127.0.0.1:$base
prom_addr=127.0.0.1:$((base + 1))
for a in "$aion_addr" "$prom_addr"; do
    if python3 -c "import socket,sys; socket.create_connection(('${a%:*}', ${a#*:}), 0.5)" 2>/dev/null; then
        echo "port of $a is taken; set PORT_BASE" >&2
        exit 1
    fi
done

(cd "$root" && cargo build --release --quiet --bin aion --example remote_write_load)
target=${CARGO_TARGET_DIR:-$root/target}
cp "$target/release/aion" "$work/aion"
cp "$target/release/examples/remote_write_load" "$work/remote_write_load"

printf 'scrape_configs: []\n' > "$work/empty.yml"
aion_pid=
prom_pid=
cleanup() {
    [ -n "$aion_pid" ] && kill "$aion_pid" 2>/dev/null && wait "$aion_pid" 2>/dev/null
    [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
    true
}
trap cleanup EXIT INT TERM

rm -rf "$work/aion-data" "$work/prom-data"
"$work/aion" --config.file="$work/empty.yml" --storage.tsdb.path="$work/aion-data" \
    --web.listen-address="$aion_addr" --web.enable-remote-write-receiver \
    >"$work/aion.log" 2>&1 &
aion_pid=$!
"$prom" --config.file="$work/empty.yml" --storage.tsdb.path="$work/prom-data" \
    --web.listen-address="$prom_addr" --web.enable-remote-write-receiver \
    >"$work/prometheus.log" 2>&1 &
prom_pid=$!

ready() {
    i=0
    while [ $i -lt 100 ]; do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$1/-/ready', timeout=1)" 2>/dev/null; then
            return 0
        fi
        i=$((i + 1))
        sleep 0.2
    done
    echo "$1 did not become ready" >&2
    exit 1
}
ready "$aion_addr"
ready "$prom_addr"
echo "aion pid $aion_pid on $aion_addr, prometheus pid $prom_pid on $prom_addr; work dir $work"
"$work/remote_write_load" --target="aion,$aion_addr,$aion_pid" \
    --target="prometheus,$prom_addr,$prom_pid" "$@"
