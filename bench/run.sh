#!/bin/sh
# Side-by-side benchmark of Aion against Prometheus: one command.
#   bench/run.sh            default run (under 15 minutes on 2 cores)
#   bench/run.sh --quick    small run (under 3 minutes)
#   bench/run.sh --help     every option
# Installs Debian's prometheus/promtool and GNU time when missing (apt), builds Aion in
# release mode, generates the workload and measures both systems; see README.md, "Benchmark".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/bench.py" "$@"
