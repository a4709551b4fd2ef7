"""A TLS proxy in front of a node, as an operator puts one (nginx, HAProxy): it ends TLS on
PORT and relays the bytes to the node's plain port UPSTREAM.

    python tls_relay.py DIR PORT UPSTREAM (cluster|rogue)

On first use it makes, in DIR, a private CA (`peer-ca.pem`, what the nodes' peer_ca_file
names) and two certificates for 127.0.0.1: one the CA signed (`cluster`), one self-signed
that names the same address (`rogue`, what a machine in the middle would show). It prints
`ready` once it listens, and appends a line to DIR/relay.log per connection: `relayed` or
`refused <why>` when the handshake failed.
"""

import datetime
import ipaddress
import os
import socket
import ssl
import sys
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(subject, key, issuer, issuer_key, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def write(path, cert, key):
    with open(path + ".pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(path + ".key", "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def make(folder):
    if os.path.exists(os.path.join(folder, "peer-ca.pem")):
        return
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("baton cluster CA", ca_key, "baton cluster CA", ca_key, True)
    node_key = ec.generate_private_key(ec.SECP256R1())
    node = certificate("127.0.0.1", node_key, "baton cluster CA", ca_key, False)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = certificate("127.0.0.1", rogue_key, "127.0.0.1", rogue_key, False)
    write(os.path.join(folder, "cluster"), node, node_key)
    write(os.path.join(folder, "rogue"), rogue, rogue_key)
    with open(os.path.join(folder, "peer-ca.pem"), "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    folder, port, upstream, which = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    make(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    base = os.path.join(folder, which)
    context.load_cert_chain(base + ".pem", base + ".key")
    log = open(os.path.join(folder, "relay.log"), "a", buffering=1)
    listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
    print("ready", flush=True)
    while True:
        raw, _ = listener.accept()
        raw.settimeout(5)
        try:
            tls = context.wrap_socket(raw, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            log.write(f"refused {e}\n")
            raw.close()
            continue
        log.write("relayed\n")
        node = socket.create_connection(("127.0.0.1", upstream))
        threading.Thread(target=pump, args=(tls, node), daemon=True).start()
        threading.Thread(target=pump, args=(node, tls), daemon=True).start()


main()
