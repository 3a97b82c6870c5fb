#!/usr/bin/env python3
"""A webhook receiver for tests/webhooks.rs, on 127.0.0.1:PORT.

POST <any path>   recorded (headers, body, arrival time); answered with the next scripted
                  status (200 when the script is empty), after the scripted delay.
GET  /_log        every recorded request, in arrival order.
POST /_script     {"statuses": [500, 410, ...], "delay_ms": 0, "pad_bytes": 0}
                  (a 3xx answers with a Location; pad_bytes lengthens every answer's body).
                  The initial statuses may also be given as a second argument: 500,200.
POST /_verify     {"secret": "whsec_...", "index": N}: request N checked by the Standard
                  Webhooks reference implementation (PyPI `standardwebhooks`), not our code.
"""
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

STATE = {"log": [], "statuses": [], "delay_ms": 0, "pad_bytes": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, obj, location=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        if location:
            self.send_header("location", location)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self.answer(200, STATE["log"])
        return self.answer(404, {})

    def do_POST(self):
        body = self.body()
        if self.path == "/_script":
            s = json.loads(body)
            with LOCK:
                STATE["statuses"] = list(s.get("statuses", []))
                STATE["delay_ms"] = int(s.get("delay_ms", 0))
                STATE["pad_bytes"] = int(s.get("pad_bytes", 0))
            return self.answer(200, {})
        if self.path == "/_verify":
            req = json.loads(body)
            with LOCK:
                entry = STATE["log"][req["index"]]
            try:
                payload = Webhook(req["secret"]).verify(
                    base64.b64decode(entry["body_b64"]), entry["headers"]
                )
                return self.answer(200, {"ok": True, "payload": payload})
            except Exception as e:  # the reference implementation's verdict
                return self.answer(200, {"ok": False, "error": repr(e)})
        with LOCK:
            status = STATE["statuses"].pop(0) if STATE["statuses"] else 200
            delay = STATE["delay_ms"]
            pad = STATE["pad_bytes"]
            STATE["log"].append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body_b64": base64.b64encode(body).decode(),
                    "body": json.loads(body or b"null"),
                    "status": status,
                    "at": time.time(),
                }
            )
        if delay:
            time.sleep(delay / 1000)
        try:
            location = "/redirected" if 300 <= status < 400 else None
            self.answer(status, {"received": status < 300, "pad": "x" * pad}, location)
        except OSError:
            pass


if __name__ == "__main__":
    if len(sys.argv) > 2:
        STATE["statuses"] = [int(x) for x in sys.argv[2].split(",") if x]
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
