"""Check a baton decision without baton:
python3 verify-decision.py WORKSPACE KEYS [OUTCOME...] [--approved-by=human,policy,grant,unknown]

KEYS holds lines as `baton keys` prints them (`<key_id> <hex public key>`). Exit 0 only when
WORKSPACE/decision.json is signed whole by one of them, is about this workspace and the
handoff.json in place, has an accepted outcome (default: approved), is still valid, every
artifact, and every file of approved/ (exactly those, in the workspace's own folder, not a
link), has the bytes decided, and the decision and each file of approved/ were approved by a
kind of approver accepted (default: human, a person). Needs `cryptography` and nothing else;
no check is an `assert` (python -O keeps them). docs/receipts.md.
"""
import base64, datetime, decimal, hashlib, json, math, os, stat, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

def refuse(why):
    sys.exit("REFUSED: " + why)

def unique(pairs):  # a member named twice could mean one thing here and another elsewhere
    if len({k for k, _ in pairs}) != len(pairs): refuse("a JSON member is named twice")
    return dict(pairs)

def number(f):  # a float as the daemon's canonical JSON writes it (serde_json): 1e-7, 0.00001, 1e+20
    if f == 0: return "-0.0" if math.copysign(1.0, f) < 0 else "0.0"
    mantissa, _, exp = repr(abs(f)).partition("e"); whole, _, frac = mantissa.partition(".")
    frac = "" if frac == "0" else frac
    digits = (whole + frac).lstrip("0"); power = int(exp or 0) - len(frac)
    kept = digits.rstrip("0"); power += len(digits) - len(kept); digits = kept
    point = len(digits) + power  # where the decimal point falls among the digits
    if power >= 0 and point <= 16: text = digits + "0" * power + ".0"
    elif 0 < point <= 16: text = digits[:point] + "." + digits[point:]
    elif -5 < point <= 0: text = "0." + "0" * -point + digits
    else: text = digits[0] + ("." + digits[1:] if len(digits) > 1 else "") + "e" + ("-" if point < 1 else "+") + str(abs(point - 1))
    return ("-" if f < 0 else "") + text

def as_int(t):  # "-0" is the float it says; the daemon keeps integers of 64 bits only
    if t == "-0": return -0.0
    if not -(2**63) <= int(t) < 2**64: refuse("integer %s is outside the range baton keeps exactly" % t)
    return int(t)

def as_float(t):  # a decimal a float does not hold as written would share another's digest
    v = float(t)
    if not math.isfinite(v) or decimal.Decimal(t) != decimal.Decimal(number(v)): refuse("number %s has more precision than a 64-bit float keeps" % t)
    return v

def not_a_number(t): refuse("%s is not a JSON number" % t)

def load(path):  # UTF-8 without a byte order mark, as baton reads it (json.loads would guess UTF-16)
    with open(path, "rb") as f: data = f.read()
    if data.startswith(b"\xef\xbb\xbf"): refuse(path + " starts with a byte order mark")
    try: text = data.decode("utf-8")
    except UnicodeDecodeError: refuse(path + " is not UTF-8")
    return json.loads(text, object_pairs_hook=unique, parse_int=as_int, parse_float=as_float, parse_constant=not_a_number)

# The handoff's optional members (`baton schema handoff`): a null in one stands for its absence
# and is dropped before the digest; any other null is kept (one nested in an optional member's
# fields, which baton drops too, is kept here: refused, never taken for another handoff).
OPTIONAL = {"artifacts", "classification", "completed", "confidence", "context", "deadline", "decisions", "evidence_refs",
            "expected_output", "fallback", "id", "labels", "pitfalls_hit", "provenance", "reason", "regulatory_ref",
            "remaining", "scope", "sign_off", "status", "summary", "task", "title", "to_agent", "trigger"}

def canonical(v):  # the daemon's canonical JSON: members sorted, no whitespace, UTF-8 as is
    if isinstance(v, dict): return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, list): return "[" + ",".join(map(canonical, v)) + "]"
    if isinstance(v, float): return number(v)
    return json.dumps(v, ensure_ascii=False)

def mode_ok(path, rel, folder):  # promotion makes files 0444 and folders 0755; a copy keeping modes ships them
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    wrong = [w for w, bad in (("a set-user-id, set-group-id or sticky bit", mode & 0o7000), ("writable by others than its owner", mode & 0o022), ("executable", not folder and mode & 0o111)) if bad]
    if wrong: refuse("%s has mode %04o (%s), which no approval gives" % (rel, mode, ", and ".join(wrong)))

def same(a, b):  # exact JSON equality: 1 is not 1.0, true is not 1
    dump = lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False)
    return dump(a) == dump(b)

def sha(path):
    if not stat.S_ISREG(os.lstat(path).st_mode): refuse(path + " is not a regular file")
    with open(path, "rb") as f: return hashlib.sha256(f.read()).hexdigest()

def made(by, policy):  # who a decision says approved what it approved: never "human" unsaid
    if by.startswith("policy:") or by.startswith("grant:"): return by
    return "human" if policy == "human" else "unknown"

def kind(provenance):  # human, policy, grant, or unknown for anything else
    head = provenance.split(":")[0]
    return head if head in ("policy", "grant") else ("human" if provenance == "human" else "unknown")

def approved_path(artifact):  # where promotion copies an artifact: inbox/x -> approved/x
    rel = "/".join(part for part in artifact.split("/") if part not in ("", "."))
    return "approved/" + (rel[len("inbox/"):] if rel.startswith("inbox/") else rel)

args = [a for a in sys.argv[1:] if not a.startswith("--approved-by=")]
kinds = ([a for a in sys.argv[1:] if a.startswith("--approved-by=")] or ["=human"])[-1].split("=", 1)[1].split(",")
if set(kinds) - {"human", "policy", "grant", "unknown"}: sys.exit("--approved-by: human, policy, grant or unknown")
ws, keys_file, outcomes = args[0], args[1], args[2:] or ["approved"]
keys = dict(line.split()[:2] for line in open(keys_file) if line.strip())
doc = load(os.path.join(ws, "decision.json"))
env = doc.pop("attestation", None) or refuse("no attestation")
if env["payloadType"] != "application/vnd.in-toto+json": refuse("not an in-toto payload")
payload = base64.b64decode(env["payload"], validate=True)
pae = b"DSSEv1 %d %s %d %s" % (len(env["payloadType"]), env["payloadType"].encode(), len(payload), payload)
def signed(s):
    try: Ed25519PublicKey.from_public_bytes(bytes.fromhex(keys[s["keyid"]])).verify(base64.b64decode(s["sig"]), pae); return True
    except Exception: return False
if not any(s["keyid"] in keys and signed(s) for s in env["signatures"]): refuse("no signature by a trusted key")
st = json.loads(payload, object_pairs_hook=unique)
if st["_type"] != "https://in-toto.io/Statement/v1" or st["predicateType"] != "https://baton.dev/attestation/decision/v1":
    refuse("not a baton decision statement")
p = st["predicate"]
if not same(p["decision"], doc): refuse("decision.json was edited after it was signed")
if p["workspace"] != os.path.basename(os.path.realpath(ws)): refuse("made in workspace " + p["workspace"])
if doc["outcome"] not in outcomes: refuse("outcome %s not accepted" % doc["outcome"])
until = p.get("valid_until")
if until and datetime.datetime.now(datetime.timezone.utc) > datetime.datetime.fromisoformat(until.replace("Z", "+00:00")):
    refuse("expired at " + until)
handoff = load(os.path.join(ws, "handoff.json"))  # a handoff.yaml needs `baton verify`
digest = hashlib.sha256(canonical({k: v for k, v in handoff.items() if not (v is None and k in OPTIONAL)}).encode()).hexdigest()
if digest != p["handoff_sha256"]: refuse("another handoff is in place")
for a in p["artifacts"] + (p.get("approved") or []):
    if sha(os.path.join(ws, a["path"])) != a["sha256"]: refuse(a["path"] + " changed")
top = os.path.join(ws, "approved")
if doc["outcome"] == "approved" and (os.path.lexists(top) or p["approved"]):
    def broken(e): refuse("approved/ cannot be read whole: %s" % e)
    if os.path.islink(top): refuse("approved/ is a link")  # a copy of it holds what it points at
    if os.path.lexists(top) and not os.path.isdir(top): refuse("approved/ is not a folder")
    signed, on_disk = {a["path"] for a in p["approved"]}, set()
    if os.path.isdir(top): mode_ok(top, "approved", True)
    for d, dirs, files in os.walk(top, onerror=broken):
        for name in dirs + files:
            path = os.path.join(d, name); rel = os.path.relpath(path, ws)
            if os.path.islink(path): refuse(rel + " is a link")
            mode_ok(path, rel, name in dirs)
            if name in files: on_disk.add(rel)
            elif not any(f.startswith(rel + "/") for f in signed): refuse(rel + "/ is a folder in approved/ that no approved file is in")
    if on_disk != signed: refuse("approved/ holds other files than were approved")
if doc["outcome"] == "approved":  # the decision's own approver (with no file, the files say nothing)
    who = made(doc["by"], doc.get("policy"))
    if kind(who) not in kinds: refuse("the decision was made by %s, not by %s" % (who, " or ".join(kinds)))
if doc["outcome"] == "approved":  # each file's approver, as signed (older attestations: its own artifacts only)
    own = {(approved_path(a["path"]), a["sha256"]) for a in p["artifacts"]}
    for a in p.get("approved") or []:
        who = a.get("provenance") or (made(doc["by"], doc.get("policy")) if (a["path"], a["sha256"]) in own else "unknown")
        if kind(who) not in kinds: refuse("%s was approved by %s, not by %s" % (a["path"], who, " or ".join(kinds)))
print("ok:", doc["handoff_key"], doc["outcome"], "by", doc["by"])
