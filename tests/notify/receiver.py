"""A webhook receiver for baton's tests, independent of baton's code: it verifies every
Standard Webhooks signature with Python's hmac and records each request as a JSON line.

usage: receiver.py SECRET LOG [--port N] [--answers 500,500,hang,410,503:2]
Answers are used in order, one per request, then 200 for ever. `hang` accepts the request and
never answers; `503:2` answers 503 with `Retry-After: 2`. Prints the port on the first line.
"""

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

secret, log_path = sys.argv[1], sys.argv[2]
port, answers = 0, []
args = sys.argv[3:]
while args:
    flag, value, args = args[0], args[1], args[2:]
    if flag == "--port":
        port = int(value)
    elif flag == "--answers":
        answers = [a for a in value.split(",") if a]
key = base64.b64decode(secret[len("whsec_"):])
lock = threading.Lock()


def verify(msg_id, ts, body, header):
    signed = msg_id.encode() + b"." + ts.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.split(",", 1)[1] for s in header.split(" ") if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, g) for g in given)


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        msg_id = self.headers.get("webhook-id", "")
        ts = self.headers.get("webhook-timestamp", "")
        sig = self.headers.get("webhook-signature", "")
        with lock:
            answer = answers.pop(0) if answers else "200"
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        try:
            parsed = json.loads(body)
            shaped = sorted(parsed) == ["data", "timestamp", "type"]
        except ValueError:
            parsed, shaped = None, False
        record = {"id": msg_id, "timestamp": ts, "signature": sig,
                  "valid": verify(msg_id, ts, body, sig) and fresh, "standard": shaped,
                  "answer": answer, "body": parsed, "path": self.path}
        with lock, open(log_path, "a") as log:
            log.write(json.dumps(record) + "\n")
        if answer == "hang":
            time.sleep(3600)
            return
        status, _, retry_after = answer.partition(":")
        self.send_response(int(status))
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Hook)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
