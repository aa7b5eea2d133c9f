"""A small application instrumented with prometheus_client, exposing the seed guide's
application metrics on the port given as argv[1]. Commands on stdin change values:
`queue N`, `conns N`, `request METHOD ENDPOINT STATUS SECONDS`; each is acknowledged
with `ok` on stdout."""
import sys

from prometheus_client import Counter, Gauge, Histogram, start_http_server

REQUESTS = Counter(
    "http_requests_total", "Total HTTP requests", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["method", "endpoint"]
)
QUEUE = Gauge("processing_queue_size", "Items waiting in the processing queue")
CONNS = Gauge("database_connections_active", "Active database connections")

start_http_server(int(sys.argv[1]), addr="127.0.0.1")
print("ready", flush=True)
for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    if parts[0] == "queue":
        QUEUE.set(float(parts[1]))
    elif parts[0] == "conns":
        CONNS.set(float(parts[1]))
    elif parts[0] == "request":
        method, endpoint, status, secs = parts[1], parts[2], parts[3], float(parts[4])
        REQUESTS.labels(method, endpoint, status).inc()
        LATENCY.labels(method, endpoint).observe(secs)
    print("ok", flush=True)
