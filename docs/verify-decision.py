"""Check a baton decision without baton: python3 verify-decision.py WORKSPACE KEYS [OUTCOME...]

KEYS holds lines as `baton keys` prints them (`<key_id> <hex public key>`). Exit 0 only when
WORKSPACE/decision.json is signed whole by one of them, is about this workspace and the handoff
in place, has an accepted outcome (default: approved), and every file it names, and every file
of approved/, has the bytes decided. Needs `cryptography` and nothing else. docs/receipts.md."""
import base64, hashlib, json, os, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ws, keys_file, outcomes = sys.argv[1], sys.argv[2], sys.argv[3:] or ["approved"]
keys = dict(line.split()[:2] for line in open(keys_file) if line.strip())
doc = json.load(open(os.path.join(ws, "decision.json"), encoding="utf-8"))
env = doc.pop("attestation")
payload = base64.b64decode(env["payload"])
pae = b"DSSEv1 %d %s %d %s" % (len(env["payloadType"]), env["payloadType"].encode(), len(payload), payload)
sig = next(s for s in env["signatures"] if s["keyid"] in keys)  # StopIteration: no trusted key
Ed25519PublicKey.from_public_bytes(bytes.fromhex(keys[sig["keyid"]])).verify(base64.b64decode(sig["sig"]), pae)
st = json.loads(payload)
assert st["_type"] == "https://in-toto.io/Statement/v1" and st["predicateType"] == "https://baton.dev/attestation/decision/v1"
p = st["predicate"]
assert p["decision"] == doc, "decision.json was edited after it was signed"
assert p["workspace"] == os.path.basename(os.path.abspath(ws)), "made in another workspace"
assert doc["outcome"] in outcomes, "outcome %s not accepted" % doc["outcome"]
handoff = json.load(open(os.path.join(ws, "handoff.json"), encoding="utf-8"))
canonical = json.dumps(handoff, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
assert hashlib.sha256(canonical.encode()).hexdigest() == p["handoff_sha256"], "another handoff is in place"
sha = lambda path: hashlib.sha256(open(os.path.join(ws, path), "rb").read()).hexdigest()
for s in st["subject"]:
    assert s["name"] == "handoff" or sha(s["name"]) == s["digest"]["sha256"], s["name"] + " changed"
if doc["outcome"] == "approved":
    on_disk = {os.path.relpath(os.path.join(d, f), ws) for d, _, fs in os.walk(os.path.join(ws, "approved")) for f in fs}
    assert on_disk == {a["path"] for a in p["approved"]}, "approved/ holds other files"
print("ok:", doc["handoff_key"], doc["outcome"], "by", doc["by"])
