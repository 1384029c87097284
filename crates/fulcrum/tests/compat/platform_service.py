#!/usr/bin/env python3
"""An algorithm service written the way the video-analysis platform's
published example is: Python standard library only, registers itself,
heartbeats every few seconds (with and without the stats body) and serves
POST /infer. Used unchanged against Fulcrum by the integration tests.

usage: platform_service.py GATEWAY_BASE SERVICE_ID NAME TASK_TYPES(comma-separated) [HEARTBEAT_SECONDS]
Prints "ready <port>" once registered.
"""
import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GATEWAY, SERVICE_ID, NAME, TASKS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
HEARTBEAT = float(sys.argv[5]) if len(sys.argv) > 5 else 3.0
API = GATEWAY.rstrip("/") + "/api/v1/ai_analysis"
stats = {"total_requests": 0, "avg_inference_time_ms": 0.0, "last_inference_time_ms": 0.0, "last_total_time_ms": 0.0}
lock = threading.Lock()


def post(path, payload=None):
    data = json.dumps(payload).encode("utf-8") if payload is not None else b""
    req = urllib.request.Request(API + path, data=data, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read().decode("utf-8"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        if self.path != "/infer":
            self.send_error(404)
            return
        started = time.time()
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        result = {
            "success": True,
            "result": {"task_type": body.get("task_type"), "objects": [], "total_count": 3, "served_by": self.server.server_port},
            "confidence": 0.93,
            "inference_time_ms": 5,
        }
        out = json.dumps(result).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
        with lock:
            n = stats["total_requests"] + 1
            ms = (time.time() - started) * 1000
            stats["avg_inference_time_ms"] = (stats["avg_inference_time_ms"] * (n - 1) + ms) / n
            stats["total_requests"] = n
            stats["last_inference_time_ms"] = ms
            stats["last_total_time_ms"] = ms


def heartbeats():
    beat = 0
    while True:
        time.sleep(HEARTBEAT)
        beat += 1
        try:
            with lock:
                payload = dict(stats) if beat % 2 == 0 else None
            post("/heartbeat/" + SERVICE_ID, payload)
        except Exception as e:  # keep beating, like the platform's example
            print("heartbeat failed:", e, file=sys.stderr, flush=True)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
port = server.server_port
answer = post("/register", {
    "service_id": SERVICE_ID,
    "name": NAME,
    "task_types": TASKS,
    "endpoint": "http://127.0.0.1:%d/infer" % port,
    "version": "1.0.0",
})
assert answer.get("ok") is True, answer
threading.Thread(target=heartbeats, daemon=True).start()
print("ready", port, flush=True)
server.serve_forever()
