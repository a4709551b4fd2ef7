"""A Web Push service stand-in for baton's tests, independent of baton's code. It makes
browser subscriptions (a P-256 key pair and a 16-byte auth secret per endpoint, as a browser
would), and for each push it receives it checks the VAPID token (RFC 8292: ES256 signature
with the key in `k=`, `aud` this service's origin, `exp` within 24 h, `sub` mailto:/https:),
decrypts the body with the subscription's private key and auth secret (RFC 8291, http_ece's
aes128gcm), and records it all as a JSON line.

usage: service.py LOG [--answer 201|410|404]
GET /subscribe/NAME answers a subscription's JSON (PushSubscription.toJSON() shape) for
endpoint /push/NAME. POST /push/NAME is a push. Prints the port on the first line.
"""

import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

log_path = sys.argv[1]
answer = 201
args = sys.argv[2:]
while args:
    flag, value, args = args[0], args[1], args[2:]
    if flag == "--answer":
        answer = int(value)
lock = threading.Lock()
subscriptions = {}  # name -> (private key, auth secret)


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def check_vapid(header, origin):
    """Problems with the Authorization header; an empty list when it is right."""
    if not header.startswith("vapid "):
        return ["not a vapid authorization: " + header[:40]], None, None
    params = dict(p.strip().split("=", 1) for p in header[len("vapid "):].split(","))
    token, k = params.get("t", ""), params.get("k", "")
    problems = []
    try:
        head, claims, sig = token.split(".")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(k))
        raw = b64d(sig)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, (head + "." + claims).encode(), ec.ECDSA(hashes.SHA256()))
        header_json = json.loads(b64d(head))
        claims_json = json.loads(b64d(claims))
    except (ValueError, InvalidSignature) as e:
        return ["bad token: %r" % e], None, k
    if header_json.get("alg") != "ES256":
        problems.append("alg %r" % header_json.get("alg"))
    if claims_json.get("aud") != origin:
        problems.append("aud %r, not %r" % (claims_json.get("aud"), origin))
    exp = claims_json.get("exp", 0)
    if not (time.time() < exp <= time.time() + 24 * 3600):
        problems.append("exp %r not within 24 h" % exp)
    sub = claims_json.get("sub", "")
    if not (sub.startswith("mailto:") or sub.startswith("https:")):
        problems.append("sub %r" % sub)
    return problems, claims_json, k


class Service(BaseHTTPRequestHandler):
    def do_GET(self):
        if not self.path.startswith("/subscribe/"):
            self.send_error(404)
            return
        name = self.path[len("/subscribe/"):]
        private = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        with lock:
            subscriptions[name] = (private, auth)
        public = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        body = json.dumps({
            "endpoint": "http://127.0.0.1:%d/push/%s" % (self.server.server_port, name),
            "expirationTime": None,
            "keys": {"p256dh": b64e(public), "auth": b64e(auth)},
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        at_ms = time.time() * 1000
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        name = self.path[len("/push/"):]
        origin = "http://127.0.0.1:%d" % self.server.server_port
        problems, claims, k = check_vapid(self.headers.get("authorization", ""), origin)
        payload = None
        with lock:
            keys = subscriptions.get(name)
        if keys is None:
            problems.append("no subscription " + name)
        else:
            try:
                plain = http_ece.decrypt(body, private_key=keys[0], auth_secret=keys[1],
                                         version="aes128gcm")
                payload = json.loads(plain)
            except Exception as e:  # noqa: BLE001 - any failure to decrypt is recorded
                problems.append("cannot decrypt: %r" % e)
        record = {
            "name": name, "at_ms": at_ms, "answer": answer, "problems": problems,
            "claims": claims, "k": k, "payload": payload,
            "content_encoding": self.headers.get("content-encoding"),
            "ttl": self.headers.get("ttl"), "urgency": self.headers.get("urgency"),
        }
        with lock, open(log_path, "a") as log:
            log.write(json.dumps(record) + "\n")
        self.send_response(answer)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Service)
print(server.server_port, flush=True)
server.serve_forever()
