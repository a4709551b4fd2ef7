"""Submit a handoff, wait for its decision, check the decision's attestation.

Two ways to reach baton, one client:

* a workspace folder (`Baton("/srv/ws/alpha")`): the handoff is written as `handoff.json`
  atomically (temp file, fsync, rename, fsync of the folder; docs/spec.md section 2) and the
  answer read from `decision.json`, or from `.baton/handoffs/<key>/decision.json` once a newer
  handoff replaced it (as `baton wait` reads them);
* the HTTP API (`Baton(url=..., token=..., workspace_name=...)`): `PUT
  /api/v1/workspaces/{ws}/handoff` with an agent's token, then `GET /api/v1/handoffs/{key}`.

Either way the wait matches the answer to the handoff by key and `handoff_sha256`, and takes
only a decision whose attestation checks out against `keys` (`baton wait --key`): a forged,
edited or copied decision is not taken and the wait goes on to its timeout. Without keys it
waits only when told `unchecked=True`, as `baton wait` waits only with keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from . import receipts
from .decision import Decision
from .errors import BatonError, SubmitError, VerificationError, WaitTimeout

PathLike = Union[str, "os.PathLike[str]"]

_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_DECISION_BYTES = 16 * 1024 * 1024


def handoff_bytes(handoff: Mapping[str, Any]) -> bytes:
    """The bytes the client writes for a handoff (deterministic, so a resumed wait can work out
    the digests again from the handoff alone)."""
    return json.dumps(handoff, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


@dataclass(frozen=True)
class Submitted:
    """A handoff handed in: its key (its `id`) and the digests an answer to it may carry."""

    key: str
    handoff: Dict[str, Any] = field(repr=False)

    @property
    def digests(self) -> Tuple[str, ...]:
        raw = hashlib.sha256(handoff_bytes(self.handoff)).hexdigest()
        return (receipts.handoff_sha256(self.handoff), raw)


def prepare(handoff: Mapping[str, Any]) -> Dict[str, Any]:
    """The handoff as it will be sent: `null` members dropped, `handoff_version` "1.0" when
    absent, and an `id` (the key the answer is found by) made up when absent."""
    doc = {k: v for k, v in handoff.items() if v is not None}
    doc.setdefault("handoff_version", "1.0")
    missing = [f for f in ("task_id", "from_agent") if not isinstance(doc.get(f), str) or not doc.get(f)]
    if missing:
        raise SubmitError(
            "the handoff needs " + " and ".join(f"`{m}` (a non-empty string)" for m in missing)
            + "; add them and submit again"
        )
    if "id" not in doc:
        stem = re.sub(r"[^A-Za-z0-9._:-]", "-", doc["task_id"])[:100] or "handoff"
        doc["id"] = f"{stem}-{secrets.token_hex(6)}"
    if not isinstance(doc["id"], str) or not _KEY.match(doc["id"]):
        raise SubmitError(
            f"the handoff's id {doc['id']!r} is not 1-128 of letters, digits, `.`, `_`, `:`, `-`; "
            "pick another id (or leave it out and one is made up)"
        )
    return doc


def key_dir_name(key: str) -> str:
    """The folder of a key under `.baton/handoffs/` (`:` is written `%3A`)."""
    if all(c == "." for c in key):
        return key.replace(".", "%2E")
    return key.replace(":", "%3A")


class Baton:
    """A client for one workspace, through its folder or through the HTTP API.

    `keys`: the keys a decision must be signed by (a dict `key_id -> hex`, or the path of a
    file as `baton keys` prints it; `receipts.fetch_keys(url)` reads them from a daemon).
    `unchecked=True`, without keys: the wait takes the answer as it finds it, unsigned (anyone
    who can write the workspace folder, or answer for the API, writes it), and every
    `Decision.verified` is False. With neither, submitting works and waiting raises BatonError.
    """

    def __init__(
        self,
        workspace: Optional[PathLike] = None,
        *,
        url: Optional[str] = None,
        token: Optional[str] = None,
        workspace_name: Optional[str] = None,
        keys: Union[receipts.Keys, PathLike, None] = None,
        unchecked: bool = False,
        poll_s: float = 0.2,
    ) -> None:
        if workspace is None and url is None:
            raise BatonError("give the workspace folder, or url= (and token=, workspace_name=) of the daemon")
        self.dir = os.path.realpath(os.fspath(workspace)) if workspace is not None else None
        self.url = url.rstrip("/") if url else None
        self.token = token
        name = workspace_name or (os.path.basename(self.dir) if self.dir else None)
        if not name:
            raise BatonError("with url=, name the workspace: workspace_name='alpha'")
        self.name: str = name
        if self.url and not token:
            raise BatonError("the HTTP API needs an agent's token: token='...'")
        self._opener = urllib.request.build_opener()
        if self.url:
            # Every request carries the token: refused here, before any is made.
            pinned = receipts.refuse_plain_http_afar(
                self.url,
                "the agent's token would cross the network readable by anyone on the way, who "
                "could then act as your agent",
            )
            self._opener = receipts.opener(self.url, pinned)
        if self.dir and not self.url and not os.path.isdir(os.path.join(self.dir, ".baton")):
            raise BatonError(
                f"{self.dir} is not a baton workspace (no .baton/ folder): run `baton init {self.dir}`"
                " and make sure a `workspaces` entry of the daemon's configuration finds it"
            )
        if keys is None or isinstance(keys, dict):
            self.keys: Optional[receipts.Keys] = keys
        else:
            self.keys = receipts.load_keys(keys)
        self.unchecked = unchecked
        self.poll_s = poll_s

    # -- submitting -------------------------------------------------------------------------

    def submit(self, handoff: Mapping[str, Any]) -> Submitted:
        """Hands `handoff` in; returns its key. Writing the same handoff again is a no-op."""
        doc = prepare(handoff)
        body = handoff_bytes(doc)
        if self.url:
            self._put(f"/api/v1/workspaces/{_q(self.name)}/handoff", body)
        else:
            assert self.dir is not None
            _write_atomic(os.path.join(self.dir, "handoff.json"), body)
        return Submitted(doc["id"], doc)

    def ensure_submitted(self, handoff: Mapping[str, Any]) -> Submitted:
        """For a wait resumed after a restart: submits `handoff` (which should carry its `id`)
        only if the daemon has neither an answer to it nor it in place, the same content (writing
        it again over a newer handoff would withdraw that one)."""
        doc = prepare(handoff)
        sub = Submitted(doc["id"], doc)
        if self.poll(sub) is not None or self._known(sub):
            return sub
        return self.submit(doc)

    # -- waiting ----------------------------------------------------------------------------

    def poll(self, sub: Submitted) -> Optional[Decision]:
        """The decision on `sub` if there is one that can be taken, else None."""
        found, _ = self._look(sub)
        return found

    def wait(self, sub: Submitted, timeout: Optional[float] = None) -> Decision:
        """Blocks until `sub` is decided; `baton wait`'s outcomes (see `Outcome.exit_code`).
        Raises WaitTimeout (exit 7) when `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        refused: Optional[str] = None
        while True:
            found, why = self._look(sub)
            if found is not None:
                return found
            refused = why or refused
            if deadline is not None and time.monotonic() >= deadline:
                note = f" A decision was found but not taken: {refused}." if refused else ""
                raise WaitTimeout(
                    f"no decision on handoff {sub.key} in workspace {self.name} within {timeout:g} s;"
                    f" it is still pending.{note} Wait again for key {sub.key} later (do not submit it"
                    " again), or go on without it if that is safe.",
                    sub.key,
                    refused,
                )
            time.sleep(self.poll_s)

    def request(self, handoff: Mapping[str, Any], timeout: Optional[float] = None) -> Decision:
        """submit + wait."""
        return self.wait(self.submit(handoff), timeout)

    def _look(self, sub: Submitted) -> Tuple[Optional[Decision], Optional[str]]:
        if self.keys is None and not self.unchecked:
            # Refused before anything is read: an unsigned decision.json is whatever anyone who
            # can write the folder put there.
            raise BatonError(
                f"no keys to check the decision on handoff {sub.key} with: give Baton(..., "
                "keys=load_keys('trusted.keys')) the daemon's public keys (`baton keys` prints "
                "them), or Baton(..., unchecked=True) to take an unsigned answer anyone who can "
                "write the workspace could have written"
            )
        refused = None
        for doc in self._candidates(sub.key):
            if doc.get("handoff_key") != sub.key or doc.get("handoff_sha256") not in sub.digests:
                continue
            if self.keys is None:
                return Decision.from_json(doc), None
            try:
                signed = receipts.check_decision(
                    doc, self.keys, self.name, sub.digests, workspace_dir=self.dir
                )
            except VerificationError as e:
                refused = "; ".join(e.reasons)
                continue
            # The decision as signed (they are equal, or it was refused).
            return Decision.from_json({**signed, "attestation": doc["attestation"]}, verified=True), None
        return None, refused

    def _candidates(self, key: str) -> List[Dict[str, Any]]:
        if self.url:
            status, body = self._get(f"/api/v1/handoffs/{_q(key)}")
            if status == 404 or not isinstance(body, dict) or not body.get("decision"):
                return []
            return [body["decision"]]
        assert self.dir is not None
        found = []
        for path in (
            os.path.join(self.dir, "decision.json"),
            os.path.join(self.dir, ".baton", "handoffs", key_dir_name(key), "decision.json"),
        ):
            doc = _read_json(path)
            if isinstance(doc, dict):
                found.append(doc)
        return found

    def _known(self, sub: Submitted) -> bool:
        """Whether the daemon has this very handoff (key and content) in place."""
        if self.url:
            status, body = self._get(f"/api/v1/handoffs/{_q(sub.key)}")
            kept = body.get("handoff") if status == 200 and isinstance(body, dict) else None
        else:
            assert self.dir is not None
            kept = _read_json(os.path.join(self.dir, "handoff.json"))
        return (isinstance(kept, dict) and kept.get("id") == sub.key
                and receipts.handoff_sha256(kept) in sub.digests)

    # -- HTTP -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Optional[bytes] = None) -> Tuple[int, Any]:
        assert self.url is not None
        req = urllib.request.Request(self.url + path, data=body, method=method)
        # Never onto a redirected request (urllib copies other headers there): a redirect may
        # lead to another host, or to plain http, which the url check above never saw.
        req.add_unredirected_header("Authorization", f"Bearer {self.token}")
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(req, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise BatonError(
                f"cannot reach baton at {self.url} ({e}): is the daemon running and the url right?"
            ) from None
        try:
            return status, receipts.loads(raw) if raw else None
        except (ValueError, VerificationError):
            return status, raw.decode("utf-8", "replace")

    def _get(self, path: str) -> Tuple[int, Any]:
        status, body = self._request("GET", path)
        if status in (401, 403):
            raise BatonError(f"baton refused {path} ({status}): {_error(body)}; check the token and its workspaces")
        return status, body

    def _put(self, path: str, body: bytes) -> None:
        status, answer = self._request("PUT", path, body)
        if status not in (200, 201):
            raise SubmitError(
                f"baton refused the handoff ({status} on PUT {path}): {_error(answer)}",
                status,
                answer,
            )


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _error(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)
    return str(body)


def _read_json(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DECISION_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_DECISION_BYTES:
        return None
    try:
        return receipts.loads(data)
    except (ValueError, VerificationError):
        return None


def _write_atomic(path: str, data: bytes) -> None:
    """Temp file in the same folder (`.baton-tmp-*`, which the daemon ignores and sweeps),
    fsync, rename over `path`, fsync the folder: the daemon never sees half a file."""
    folder = os.path.dirname(path)
    tmp = os.path.join(folder, f".baton-tmp-{secrets.token_hex(8)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SubmitError(f"could not write {path}: {e}; check the folder exists and is writable") from None
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
