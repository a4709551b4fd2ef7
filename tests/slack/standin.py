"""A stand-in for the few parts of Slack baton uses, for baton's tests, independent of baton's
code: the Web API methods chat.postMessage, chat.update, views.open and apps.connections.open
(bearer tokens checked), response_url answers, and a Socket Mode WebSocket server that sends the
envelopes a test asks for and records the acknowledgements. Every request is a JSON line in LOG.

usage: standin.py BOT_TOKEN APP_TOKEN LOG
Prints the HTTP port on the first line. Control (for the test):
  POST /control/send     body: an envelope (JSON) to send on the open socket (503: none open)
  POST /control/drop     closes the open socket without a word (the daemon must reconnect)
  POST /control/fail     body: {"method": M, "times": N}: the next N calls of M answer
                         ok=false "internal_error" (Slack's API failing for a while); with
                         "status": S (e.g. 500), they answer HTTP S instead (Slack down)
"""

import base64
import hashlib
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

bot_token, app_token, log_path = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
ts_counter = [0]
sockets = []  # open Socket Mode connections (newest last)
failing = {}  # Web API method -> how many more calls answer internal_error
failing_status = {}  # Web API method -> the HTTP status those calls answer (200: ok=false)


def record(entry):
    entry["at"] = time.time()
    with lock, open(log_path, "a") as log:
        log.write(json.dumps(entry) + "\n")


# ---- a minimal WebSocket server (RFC 6455), enough for Socket Mode ---------------------------

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_send(conn, text):
    data = text.encode()
    head = bytes([0x81])
    n = len(data)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    conn.sendall(head + data)


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def ws_read(conn):
    """(opcode, payload) of the next frame; client frames must be masked."""
    b0, b1 = read_exact(conn, 2)
    opcode, masked, n = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
    if n == 126:
        n = int.from_bytes(read_exact(conn, 2), "big")
    elif n == 127:
        n = int.from_bytes(read_exact(conn, 8), "big")
    mask = read_exact(conn, 4) if masked else b"\0\0\0\0"
    data = bytes(c ^ mask[i % 4] for i, c in enumerate(read_exact(conn, n)))
    return opcode, data, bool(masked)


def serve_socket(conn):
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            return
        request += chunk
    lines = request.decode().split("\r\n")
    headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
               for l in lines[1:] if ":" in l}
    key = headers.get("sec-websocket-key", "")
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n").encode())
    record({"kind": "socket_open", "path": lines[0].split(" ")[1]})
    with lock:
        sockets.append(conn)
    # What Slack sends first on a new connection.
    ws_send(conn, json.dumps({"type": "hello", "num_connections": 1,
                              "debug_info": {"host": "standin"},
                              "connection_info": {"app_id": "A1"}}))
    try:
        while True:
            opcode, data, masked = ws_read(conn)
            if opcode == 0x8:
                record({"kind": "socket_close"})
                return
            if opcode == 0x9:
                conn.sendall(bytes([0x8A, len(data)]) + data)
                continue
            if opcode == 0x1:
                try:
                    body = json.loads(data)
                except ValueError:
                    body = data.decode(errors="replace")
                record({"kind": "ack", "body": body, "masked": masked})
    except (ConnectionError, OSError, ValueError):
        record({"kind": "socket_gone"})
    finally:
        with lock:
            if conn in sockets:
                sockets.remove(conn)


def ws_listen():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def accept():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve_socket, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return srv.getsockname()[1]


ws_port = ws_listen()


# ---- the Web API ------------------------------------------------------------------------------

class Api(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = raw.decode(errors="replace")
        auth = self.headers.get("authorization", "")
        path = self.path
        if path == "/control/send":
            with lock:
                conn = sockets[-1] if sockets else None
            if conn is None:
                return self.answer(503, {"ok": False, "error": "no socket"})
            ws_send(conn, json.dumps(body))
            return self.answer(200, {"ok": True})
        if path == "/control/drop":
            with lock:
                conns, sockets[:] = list(sockets), []
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                except OSError:
                    pass
            return self.answer(200, {"ok": True, "dropped": len(conns)})
        if path == "/control/fail":
            with lock:
                failing[body["method"]] = int(body.get("times", 1))
            failing_status[body["method"]] = int(body.get("status", 200))
            return self.answer(200, {"ok": True})
        if path.startswith("/respond/"):
            record({"kind": "response_url", "path": path, "body": body})
            return self.answer(200, {"ok": True})
        method = path.rsplit("/", 1)[-1]
        record({"kind": "api", "method": method, "auth": auth,
                "content_type": self.headers.get("content-type", ""), "body": body})
        if method == "apps.connections.open":
            if auth != "Bearer " + app_token:
                return self.answer(200, {"ok": False, "error": "invalid_auth"})
            return self.answer(200, {"ok": True,
                                     "url": "ws://127.0.0.1:%d/link/?ticket=t1" % ws_port})
        if auth != "Bearer " + bot_token:
            return self.answer(200, {"ok": False, "error": "invalid_auth"})
        with lock:
            fail = failing.get(method, 0) > 0
            if fail:
                failing[method] -= 1
            status = failing_status.get(method, 200)
        if fail:
            return self.answer(status, {"ok": False, "error": "internal_error"})
        if method == "chat.postMessage":
            with lock:
                ts_counter[0] += 1
                ts = "1700000000.%06d" % ts_counter[0]
            return self.answer(200, {"ok": True, "channel": body.get("channel"), "ts": ts,
                                     "message": {"text": body.get("text")}})
        if method == "views.open":
            # Slack takes a trigger_id once, and a view object.
            if not body.get("trigger_id") or not isinstance(body.get("view"), dict):
                return self.answer(200, {"ok": False, "error": "invalid_arguments"})
            with lock:
                ts_counter[0] += 1
                view_id = "V%06d" % ts_counter[0]
            return self.answer(200, {"ok": True, "view": dict(body["view"], id=view_id)})
        if method == "chat.update":
            return self.answer(200, {"ok": True, "channel": body.get("channel"),
                                     "ts": body.get("ts"), "text": body.get("text")})
        return self.answer(200, {"ok": False, "error": "unknown_method"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
print(server.server_address[1], flush=True)
server.serve_forever()
