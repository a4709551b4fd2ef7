"""Checking a decision's attestation with the daemon's public keys (docs/receipts.md).

This is docs/verify-decision.py as functions: the same checks in the same order, each refusal
named. `verify_workspace` is that script (the handoff in place, its artifacts, `approved/`);
`check_decision` is what a wait takes (`baton wait --key`): checks 1-3 and 6, the handoff
digest against the one the agent submitted, and the artifacts when the workspace is at hand.
No check is an `assert` (python -O removes them). Needs `cryptography` (the `[verify]` extra).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import http.client
import ipaddress
import json
import math
import os
import socket
import stat
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import BatonError, VerificationError

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT = "https://in-toto.io/Statement/v1"
PREDICATE = "https://baton.dev/attestation/decision/v1"

#: Trusted keys: key id -> hex public key, as `baton keys` prints them.
Keys = Dict[str, str]


class _Refused(Exception):
    pass


def refuse(why: str) -> None:
    raise _Refused(why)


def unique(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    # A member named twice could mean one thing here and another elsewhere.
    if len({k for k, _ in pairs}) != len(pairs):
        refuse("a JSON member is named twice")
    return dict(pairs)


def _int(token: str) -> Union[int, float]:
    # The daemon reads "-0" as the float it says, and keeps integers of 64 bits only.
    if token == "-0":
        return -0.0
    value = int(token)
    if not -(2**63) <= value < 2**64:
        refuse("integer %s is outside the range baton keeps exactly (-2^63 to 2^64-1)" % token)
    return value


def _float(token: str) -> float:
    # A decimal a 64-bit float does not hold exactly as written would share its digest with
    # another; the daemon refuses it, and so does every check here.
    value = float(token)
    if not math.isfinite(value) or decimal.Decimal(token) != decimal.Decimal(_number(value)):
        refuse("number %s has more precision than a 64-bit float keeps" % token)
    return value


def _constant(token: str) -> Any:
    refuse("%s is not a JSON number" % token)


def _json(data: Union[bytes, str]) -> Any:
    """JSON as the daemon reads it: UTF-8 without a byte order mark (json.loads would guess
    UTF-16 or UTF-32), and a member named twice, NaN, and a number it would not keep as
    written are refused (raise _Refused)."""
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            refuse("the file starts with a byte order mark; baton reads UTF-8 without one")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            refuse("the file is not UTF-8 (%s)" % e)
    return json.loads(
        data, object_pairs_hook=unique, parse_int=_int, parse_float=_float, parse_constant=_constant
    )


def loads(data: Union[bytes, str]) -> Any:
    """JSON, refusing a member named twice (as every check here must), and numbers the daemon
    would not keep as written."""
    try:
        return _json(data)
    except _Refused as e:
        raise VerificationError([str(e)]) from None


def same(a: Any, b: Any) -> bool:
    # Exact JSON equality: 1 is not 1.0, true is not 1.
    def dump(v: Any) -> str:
        return json.dumps(v, sort_keys=True, ensure_ascii=False)

    return dump(a) == dump(b)


def _number(f: float) -> str:
    """A float as the daemon writes it in canonical JSON (serde_json): the shortest digits that
    read back as it (Python's repr has the same), laid out as `1e-7`, `0.00001`, `1e+20`,
    `1000000000000000.0` rather than Python's `1e-07`, `1e-05`."""
    if f == 0:
        return "-0.0" if math.copysign(1.0, f) < 0 else "0.0"
    mantissa, _, exp = repr(abs(f)).partition("e")
    whole, _, frac = mantissa.partition(".")
    frac = "" if frac == "0" else frac
    digits = (whole + frac).lstrip("0")
    power = int(exp or 0) - len(frac)  # the value is int(digits) * 10**power
    kept = digits.rstrip("0")
    power += len(digits) - len(kept)
    digits, n = kept, len(kept)
    point = n + power  # where the decimal point falls among the digits
    if power >= 0 and point <= 16:
        text = digits + "0" * power + ".0"
    elif 0 < point <= 16:
        text = digits[:point] + "." + digits[point:]
    elif -5 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        e = point - 1
        text = digits[0] + ("." + digits[1:] if n > 1 else "") + "e" + ("-" if e < 0 else "+") + str(abs(e))
    return ("-" if f < 0 else "") + text


def _canonical(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ",".join(
            json.dumps(k, ensure_ascii=False) + ":" + _canonical(v[k]) for k in sorted(v)
        ) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_canonical(x) for x in v) + "]"
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("%r is not a JSON number" % v)
        return _number(v)
    return json.dumps(v, ensure_ascii=False)


#: The handoff's optional members (`baton schema handoff`): a `null` in one stands for its
#: absence, and the daemon drops it before the digest. A `null` anywhere else is kept, as the
#: daemon keeps it (one inside an optional member's own fields, which the daemon drops too, is
#: kept here: such a handoff is refused, never taken for another; check it with `baton verify`).
OPTIONAL = frozenset((
    "artifacts", "classification", "completed", "confidence", "context", "deadline",
    "decisions", "evidence_refs", "expected_output", "fallback", "id", "labels",
    "pitfalls_hit", "provenance", "reason", "regulatory_ref", "remaining", "scope",
    "sign_off", "status", "summary", "task", "title", "to_agent", "trigger",
))


def canonical(handoff: Mapping[str, Any]) -> bytes:
    """The handoff's canonical JSON as the daemon makes it (members sorted, no whitespace,
    UTF-8 not escaped, numbers as serde_json writes them, `null` optional members dropped):
    its sha256 is the decision's `handoff_sha256`."""
    kept = {k: v for k, v in handoff.items() if not (v is None and k in OPTIONAL)}
    return _canonical(kept).encode()


def handoff_sha256(handoff: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(handoff)).hexdigest()


def _sha(path: str) -> str:
    if not stat.S_ISREG(os.lstat(path).st_mode):
        refuse(path + " is not a regular file")
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def parse_keys(text: str) -> Keys:
    """Keys as `baton keys` prints them: `<key_id> <hex public key>` a line."""
    keys: Keys = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            keys[parts[0]] = parts[1]
    if not keys:
        raise BatonError("no keys found: expected lines `<key_id> <hex public key>` as `baton keys` prints them")
    return keys


def load_keys(path: Union[str, "os.PathLike[str]"]) -> Keys:
    with open(path, encoding="utf-8") as f:
        return parse_keys(f.read())


ALLOW_PLAIN_HTTP = "BATON_ALLOW_PLAIN_HTTP"


#: Where a request to a checked URL connects: (family, socket address) pairs, empty when the
#: URL needs no pinning (https, a literal address, or plain http let through).
Pinned = List[Tuple[int, Any]]


def refuse_plain_http_afar(url: str, why: str) -> Pinned:
    """Raises BatonError, before anything is sent, when `url` is plain `http://` to a host
    other than this one, unless `BATON_ALLOW_PLAIN_HTTP=1` (a private network its user
    trusts): whatever crosses it anyone on the way reads and can change. This host is
    127.0.0.0/8 and ::1 as written, or the name `localhost` when it resolves to those alone (a
    hosts file or resolver mapping it elsewhere makes it another host); then the addresses it
    resolved to are returned, the only ones to connect to (`opener`). `why` says what would be
    lost. The rule of the `baton` command line."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() != "http":
        return []
    host = parsed.hostname or ""
    if host.lower() == "localhost":
        pinned = _loopback_only(host, parsed.port or 80)
        if pinned:
            return pinned
    else:
        try:
            if ipaddress.ip_address(host).is_loopback:
                return []
        except ValueError:
            pass
    allowed = os.environ.get(ALLOW_PLAIN_HTTP, "")
    if allowed in ("1", "true"):
        return []
    if allowed not in ("", "0", "false"):
        raise BatonError(
            f"{ALLOW_PLAIN_HTTP}={allowed!r}: set it to 1 to send to plain http:// addresses of "
            "other hosts (on a private network you trust), or unset it"
        )
    raise BatonError(
        f"{url} is plain http to another host: {why}, so nothing was sent; use the daemon's "
        f"https:// address, or run this on the daemon's host (http://127.0.0.1:PORT); on a "
        f"private network you trust, set {ALLOW_PLAIN_HTTP}=1"
    )


def _loopback_only(host: str, port: int) -> Pinned:
    """The addresses `host` resolves to, if all are loopback; else none."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    pinned = [(family, sockaddr) for family, _, _, _, sockaddr in found]
    if pinned and all(ipaddress.ip_address(sockaddr[0]).is_loopback for _, sockaddr in pinned):
        return pinned
    return []


class _PinnedConnection(http.client.HTTPConnection):
    """Connects to the pinned addresses alone, never resolving the name again."""

    pinned: Pinned = []

    def connect(self) -> None:
        last: Optional[OSError] = None
        for _, sockaddr in self.pinned:
            try:
                # A literal address: nothing is resolved.
                self.sock = socket.create_connection(sockaddr[:2], self.timeout, self.source_address)
                return
            except OSError as e:
                last = e
        raise last or OSError("no address to connect to")


class _PinnedHandler(urllib.request.HTTPHandler):
    def __init__(self, netloc: str, pinned: Pinned) -> None:
        super().__init__()
        self.netloc = netloc
        self.connection = type("Pinned", (_PinnedConnection,), {"pinned": pinned})

    def http_open(self, req: Any) -> Any:
        # Only the checked name and port: a redirect elsewhere resolves as ever.
        if req.host.lower() == self.netloc:
            return self.do_open(self.connection, req)
        return super().http_open(req)


def opener(url: str, pinned: Pinned, *handlers: Any) -> urllib.request.OpenerDirector:
    """An opener for `url` that connects `localhost` to `pinned` alone (as
    `refuse_plain_http_afar` returned them): a hosts file changed since cannot lead it
    elsewhere."""
    if not pinned:
        return urllib.request.build_opener(*handlers)
    parsed = urllib.parse.urlsplit(url)
    netloc = (parsed.hostname or "").lower() + (f":{port}" if parsed.port else "")
    return urllib.request.build_opener(_PinnedHandler(netloc, pinned), *handlers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        raise BatonError(
            f"{req.full_url} answered {code} (to {newurl}), not the keys; no redirect is "
            "followed (the keys would be whatever the next address answers): name the "
            "daemon's own address"
        )


def fetch_keys(url: str, timeout: float = 10.0) -> Keys:
    """The daemon's public keys from `GET /api/v1/keys` (open, no credential). Trusting them
    trusts that URL: name the daemon you mean, over TLS (plain http only to this host, see
    `refuse_plain_http_afar`). No redirect is followed (to another host, or from https to
    plain http, it would hand the choice of keys to whoever the first address names), as
    `baton verify --url` follows none."""
    pinned = refuse_plain_http_afar(
        url, "keys fetched over it are whatever anyone on the way answers (or pin them: load_keys)"
    )
    with opener(url, pinned, _NoRedirect()).open(url.rstrip("/") + "/api/v1/keys", timeout=timeout) as r:
        listed = json.loads(r.read())
    return {k["key_id"]: k["public_key"] for k in listed}


def _signed(env: Mapping[str, Any], keys: Keys) -> Dict[str, Any]:
    """Checks 1 and the Statement: returns the predicate of an envelope signed by a trusted key."""
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:  # pragma: no cover - depends on the install
        raise BatonError(
            "checking a decision needs `cryptography`: pip install 'baton-client[verify]'"
        ) from None
    if env.get("payloadType") != PAYLOAD_TYPE:
        refuse("not an in-toto payload")
    try:
        payload = base64.b64decode(env["payload"], validate=True)
    except Exception:
        refuse("the payload is not base64")
    ptype = env["payloadType"]
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype.encode(), len(payload), payload)

    def signed(s: Mapping[str, Any]) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(keys[s["keyid"]])).verify(
                base64.b64decode(s["sig"]), pae
            )
            return True
        except Exception:
            return False

    if not any(s.get("keyid") in keys and signed(s) for s in env.get("signatures") or []):
        refuse("no signature by a trusted key")
    # The payload's bytes are what was signed: parse them, never re-serialize.
    st = json.loads(payload, object_pairs_hook=unique)
    if st.get("_type") != STATEMENT or st.get("predicateType") != PREDICATE:
        refuse("not a baton decision statement")
    return st["predicate"]


def _valid_now(p: Mapping[str, Any], now: Optional[datetime.datetime]) -> None:
    until = p.get("valid_until")
    at = now or datetime.datetime.now(datetime.timezone.utc)
    if until and at > datetime.datetime.fromisoformat(until.replace("Z", "+00:00")):
        refuse("expired at " + until)


def _checked(run: Any) -> Any:
    try:
        return run()
    except _Refused as e:
        raise VerificationError([str(e)]) from None
    except (KeyError, TypeError, ValueError) as e:
        raise VerificationError([f"the decision is not shaped as an attested decision ({e!r})"]) from None


def check_decision(
    doc: Mapping[str, Any],
    keys: Keys,
    workspace: str,
    digests: Iterable[str],
    workspace_dir: Optional[str] = None,
    now: Optional[datetime.datetime] = None,
) -> Dict[str, Any]:
    """What a wait takes: `doc` (decision.json, parsed with `loads`) signed whole by one of
    `keys`, made in workspace `workspace`, about a handoff with one of `digests`, valid now,
    and (with `workspace_dir`) every artifact decided still has its bytes. Returns the decision
    as signed; raises VerificationError naming the reason otherwise."""

    def run() -> Dict[str, Any]:
        doc_ = dict(doc)
        env = doc_.pop("attestation", None) or refuse("no attestation")
        p = _signed(env, keys)
        if not same(p["decision"], doc_):
            refuse("decision.json was edited after it was signed")
        if p["workspace"] != workspace:
            refuse("made in workspace " + p["workspace"])
        _valid_now(p, now)
        if p["handoff_sha256"] not in set(digests):
            refuse("it answers another handoff (handoff_sha256 " + p["handoff_sha256"] + ")")
        if workspace_dir is not None:
            for a in p["artifacts"]:
                if _sha(os.path.join(workspace_dir, a["path"])) != a["sha256"]:
                    refuse(a["path"] + " changed")
        return p["decision"]

    return _checked(run)


def _made(by: str, policy: Optional[str]) -> str:
    """Who a decision says approved what it approved: never `human` unless it says so."""
    if by.startswith("policy:") or by.startswith("grant:"):
        return by
    return "human" if policy == "human" else "unknown"


def _kind(provenance: str) -> str:
    head = provenance.split(":")[0]
    if head in ("policy", "grant"):
        return head
    return "human" if provenance == "human" else "unknown"


def _mode_ok(path: str, rel: str, folder: bool) -> None:
    """Promotion makes files 0444 and folders 0755: a set-user-id, set-group-id or sticky bit, a
    write bit for group or others, or an execute bit on a file is a power no approval gave (a
    copy that keeps modes, `rsync -a`, ships it)."""
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    wrong = []
    if mode & 0o7000:
        wrong.append("a set-user-id, set-group-id or sticky bit")
    if mode & 0o022:
        wrong.append("writable by others than its owner")
    if not folder and mode & 0o111:
        wrong.append("executable")
    if wrong:
        refuse("%s has mode %04o (%s), which no approval gives" % (rel, mode, ", and ".join(wrong)))


def _approved_path(artifact: str) -> str:
    """Where promotion copies an artifact: inbox/x -> approved/x."""
    rel = "/".join(part for part in artifact.split("/") if part not in ("", "."))
    return "approved/" + (rel[len("inbox/"):] if rel.startswith("inbox/") else rel)


def verify_workspace(
    ws: Union[str, "os.PathLike[str]"],
    keys: Keys,
    outcomes: Sequence[str] = ("approved",),
    now: Optional[datetime.datetime] = None,
    approved_by: Sequence[str] = ("human",),
) -> Dict[str, Any]:
    """docs/verify-decision.py: WORKSPACE/decision.json signed whole by one of `keys`, about
    this workspace and the handoff.json in place, an accepted outcome, still valid, and every
    artifact, and every file of approved/ (exactly those, in the workspace's own folder, not a
    link), with the bytes decided; on an approval, the decision and each file of approved/
    approved by a kind `approved_by` accepts (`human`, and
    `policy`, `grant`, `unknown` only when named: `baton verify --approved-by`). Returns the
    decision; raises VerificationError otherwise."""
    ws = os.fspath(ws)
    kinds = set(approved_by)
    if kinds - {"human", "policy", "grant", "unknown"}:
        raise ValueError("approved_by: human, policy, grant or unknown")

    def load(path: str) -> Any:
        with open(path, "rb") as f:
            return _json(f.read())

    def run() -> Dict[str, Any]:
        doc = load(os.path.join(ws, "decision.json"))
        env = doc.pop("attestation", None) or refuse("no attestation")
        p = _signed(env, keys)
        if not same(p["decision"], doc):
            refuse("decision.json was edited after it was signed")
        if p["workspace"] != os.path.basename(os.path.realpath(ws)):
            refuse("made in workspace " + p["workspace"])
        if doc["outcome"] not in outcomes:
            refuse("outcome %s not accepted" % doc["outcome"])
        _valid_now(p, now)
        handoff = load(os.path.join(ws, "handoff.json"))  # a handoff.yaml needs `baton verify`
        if hashlib.sha256(canonical(handoff)).hexdigest() != p["handoff_sha256"]:
            refuse("another handoff is in place")
        for a in p["artifacts"] + (p.get("approved") or []):
            if _sha(os.path.join(ws, a["path"])) != a["sha256"]:
                refuse(a["path"] + " changed")
        top = os.path.join(ws, "approved")
        if doc["outcome"] == "approved" and (os.path.lexists(top) or p["approved"]):
            def broken(e: OSError) -> None:
                refuse("approved/ cannot be read whole: %s" % e)

            if os.path.islink(top):
                # A copy of it holds whatever the link points at, not what was approved.
                refuse("approved/ is a link")
            if os.path.lexists(top) and not os.path.isdir(top):
                refuse("approved/ is not a folder")
            signed = {a["path"] for a in p["approved"]}
            on_disk = set()
            if os.path.isdir(top):
                _mode_ok(top, "approved", True)
            for d, dirs, files in os.walk(top, onerror=broken):
                for name in dirs + files:
                    path = os.path.join(d, name)
                    rel = os.path.relpath(path, ws)
                    if os.path.islink(path):
                        refuse(rel + " is a link")
                    _mode_ok(path, rel, name in dirs)
                    if name in files:
                        on_disk.add(rel)
                    elif not any(f.startswith(rel + "/") for f in signed):
                        refuse(rel + "/ is a folder in approved/ that no approved file is in")
            if on_disk != signed:
                refuse("approved/ holds other files than were approved")
        if doc["outcome"] == "approved":
            # The decision's own approver: with no file in approved/, the files say nothing.
            made = _made(doc["by"], doc.get("policy"))
            if _kind(made) not in kinds:
                refuse(
                    "the decision was made by %s, not by %s" % (made, " or ".join(sorted(kinds)))
                )
            # Each file's approver as signed; an older attestation names none, so only the
            # decision's own artifacts take its `by` and `policy`, the rest are unknown.
            own = {(_approved_path(a["path"]), a["sha256"]) for a in p["artifacts"]}
            for a in p.get("approved") or []:
                who = a.get("provenance") or (
                    _made(doc["by"], doc.get("policy"))
                    if (a["path"], a["sha256"]) in own
                    else "unknown"
                )
                if _kind(who) not in kinds:
                    refuse(
                        "%s was approved by %s, not by %s"
                        % (a["path"], who, " or ".join(sorted(kinds)))
                    )
        return p["decision"]

    return _checked(run)
