"""A small SMTP server for baton's tests (no packages needed): it takes mail over plain SMTP
and records each one parsed by Python's own email package, as a JSON line.

usage: smtp.py LOG [--hang] [--port N] [--starttls | --tls] [--cert CERT --key KEY]
With --hang it accepts connections and never says a word (a hung mail server). With
--starttls it offers STARTTLS and refuses mail before it (a server that requires TLS); with
--tls it speaks TLS from the first byte (smtps). Each mail's record says whether it came over
TLS. Prints the port on the first line.
"""

import email
import email.policy
import json
import socketserver
import ssl
import sys
import threading
import time

log_path = sys.argv[1]
hang = "--hang" in sys.argv[2:]
port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
starttls = "--starttls" in sys.argv[2:]
implicit = "--tls" in sys.argv[2:]
tls = None
if starttls or implicit:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    arg = lambda name: sys.argv[sys.argv.index(name) + 1]
    tls.load_cert_chain(arg("--cert"), arg("--key"))
lock = threading.Lock()


class Session(socketserver.StreamRequestHandler):
    def say(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def secure(self):
        self.connection = tls.wrap_socket(self.request, server_side=True)
        self.rfile = self.connection.makefile("rb")
        self.wfile = self.connection.makefile("wb")
        self.encrypted = True

    def handle(self):
        if hang:
            time.sleep(3600)
            return
        self.encrypted = False
        if implicit:
            self.secure()
        self.say("220 test-smtp ready")
        sender, rcpts = None, []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.say("250-test-smtp")
                if starttls and not self.encrypted:
                    self.say("250-STARTTLS")
                self.say("250 8BITMIME")
            elif verb == "STARTTLS" and starttls and not self.encrypted:
                self.say("220 go ahead")
                self.secure()
            elif verb == "MAIL" and starttls and not self.encrypted:
                self.say("530 must issue a STARTTLS command first")
            elif verb == "MAIL":
                sender, rcpts = line.split(":", 1)[1].strip(), []
                self.say("250 OK")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                self.say("250 OK")
            elif verb == "DATA":
                self.say("354 end with .")
                data = b""
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b".\n", b""):
                        break
                    if chunk.startswith(b".."):
                        chunk = chunk[1:]
                    data += chunk
                self.record(sender, rcpts, data, self.encrypted)
                self.say("250 queued")
            elif verb == "RSET":
                self.say("250 OK")
            elif verb == "QUIT":
                self.say("221 bye")
                return
            else:
                self.say("502 not implemented")

    def record(self, sender, rcpts, data, encrypted):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        entry = {
            "envelope_from": sender, "rcpt": rcpts, "tls": encrypted,
            "from": str(msg["from"]), "to": str(msg["to"]), "subject": str(msg["subject"]),
            "message_id": str(msg["message-id"]), "content_type": msg.get_content_type(),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        with lock, open(log_path, "a") as log:
            log.write(json.dumps(entry) + "\n")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client refusing our certificate is a case under test, not news


server = Server(("127.0.0.1", port), Session)
print(server.server_address[1], flush=True)
server.serve_forever()
