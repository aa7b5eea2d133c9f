"""A Tracktion-like application instrumented with prometheus_client, for the alerting
end-to-end test. Serves /metrics on two ports: the first is the application; the second
is a "service" that the test can take down ("down") and bring back ("up"). Reads
commands on stdin: "bad" pushes every metric over the seed guide's thresholds, "good"
brings them back. Answers each command with "ok" and prints "ready" at start."""

import sys
import threading
import time
from wsgiref.simple_server import make_server, WSGIRequestHandler

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

registry = CollectorRegistry()
requests = Counter("http_requests", "HTTP requests.", ["service", "status"], registry=registry)
latency = Histogram(
    "http_request_duration_seconds",
    "Request latency.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10),
    registry=registry,
)
queue = Gauge("processing_queue_size", "Items waiting.", registry=registry)
db = Gauge("database_connections_active", "Open database connections.", registry=registry)

state = {"bad": False}


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve(port):
    srv = make_server("127.0.0.1", port, make_wsgi_app(registry), handler_class=Quiet)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


def traffic():
    while True:
        bad = state["bad"]
        for _ in range(10):
            requests.labels("analysis", "200").inc()
            latency.observe(3.0 if bad else 0.05)
        if bad:
            requests.labels("analysis", "500").inc(10)
        else:
            requests.labels("analysis", "500").inc(0)
        time.sleep(0.1)


def main():
    app_port, svc_port = int(sys.argv[1]), int(sys.argv[2])
    queue.set(3)
    db.set(5)
    serve(app_port)
    svc = serve(svc_port)
    threading.Thread(target=traffic, daemon=True).start()
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "bad":
            state["bad"] = True
            queue.set(150)
            db.set(0)
        elif cmd == "good":
            state["bad"] = False
            queue.set(3)
            db.set(5)
        elif cmd == "down" and svc is not None:
            svc.shutdown()
            svc.server_close()
            svc = None
        elif cmd == "up" and svc is None:
            svc = serve(svc_port)
        print("ok", flush=True)


if __name__ == "__main__":
    main()
