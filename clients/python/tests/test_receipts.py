"""The client's checks of a decision's attestation against a real approved decision, and the
same verdict as docs/verify-decision.py for each change made to it.

Environment: BATON_WORKSPACE (a workspace whose handoff a person approved), BATON_KEYS (`baton
keys` output), VERIFY_SCRIPT (docs/verify-decision.py). Run: python -m unittest test_receipts.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from baton_client import Baton, Submitted, VerificationError, WaitTimeout, load_keys, verify_workspace

WS = os.environ["BATON_WORKSPACE"]
KEYS_FILE = os.environ["BATON_KEYS"]
SCRIPT = os.environ["VERIFY_SCRIPT"]


class Receipts(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp()
        # The same folder name: the attestation names the workspace it was made in.
        self.ws = os.path.join(self.tmp, os.path.basename(WS))
        shutil.copytree(WS, self.ws, symlinks=True)
        self.keys = load_keys(KEYS_FILE)

    def tearDown(self) -> None:
        shutil.rmtree(self.tmp)

    def decision(self) -> dict:
        with open(os.path.join(self.ws, "decision.json"), "rb") as f:
            return json.loads(f.read())

    def write_decision(self, doc: dict) -> None:
        with open(os.path.join(self.ws, "decision.json"), "w") as f:
            json.dump(doc, f)
        # A forger writes the archived copy too (else the wait would take that one).
        shutil.rmtree(os.path.join(self.ws, ".baton", "handoffs"), ignore_errors=True)

    def script(self, keys_file: str = KEYS_FILE) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, SCRIPT, self.ws, keys_file], capture_output=True, text=True)

    def refused_alike(self, why: str, keys=None, keys_file: str = KEYS_FILE) -> None:
        """Both the client and docs/verify-decision.py refuse, for the same reason."""
        with self.assertRaises(VerificationError) as e:
            verify_workspace(self.ws, keys or self.keys)
        self.assertIn(why, str(e.exception))
        out = self.script(keys_file)
        self.assertEqual(out.returncode, 1, out)
        self.assertIn("REFUSED: " + why, out.stderr)

    def waited(self, timeout: float, keys=None) -> object:
        with open(os.path.join(self.ws, "handoff.json"), "rb") as f:
            handoff = json.loads(f.read())
        baton = Baton(self.ws, keys=keys or self.keys, poll_s=0.05)
        return baton.wait(Submitted(handoff["id"], handoff), timeout=timeout)

    def test_a_real_approval_checks_out_both_ways(self) -> None:
        signed = verify_workspace(self.ws, self.keys)
        self.assertEqual(signed["outcome"], "approved")
        out = self.script()
        self.assertEqual(out.returncode, 0, out)
        decision = self.waited(5)
        self.assertTrue(decision.verified)
        self.assertEqual(decision.outcome.value, "approved")

    def test_another_key_is_refused(self) -> None:
        # A key of the same id that did not sign: what an agent that made its own key has.
        key_id = next(iter(self.keys))
        other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        wrong = os.path.join(self.tmp, "wrong.keys")
        with open(wrong, "w") as f:
            f.write(f"{key_id} {other}\n")
        self.refused_alike("no signature by a trusted key", keys={key_id: other}, keys_file=wrong)
        with self.assertRaises(WaitTimeout) as e:
            self.waited(0.5, keys={key_id: other})
        self.assertIn("no signature by a trusted key", e.exception.refused or "")

    def test_an_edited_decision_is_refused_and_not_taken_by_a_wait(self) -> None:
        doc = self.decision()
        doc["comment"] = "ship it, says rita"
        self.write_decision(doc)
        self.refused_alike("decision.json was edited after it was signed")
        with self.assertRaises(WaitTimeout) as e:
            self.waited(0.5)
        self.assertIn("edited after it was signed", e.exception.refused or "")
        self.assertIn("not taken", str(e.exception))

    def test_an_edited_payload_breaks_the_signature(self) -> None:
        doc = self.decision()
        env = doc["attestation"]
        statement = json.loads(base64.b64decode(env["payload"]))
        statement["predicate"]["decision"]["by"] = "mallory"
        env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        doc["by"] = "mallory"
        self.write_decision(doc)
        self.refused_alike("no signature by a trusted key")

    def test_a_decision_copied_into_another_workspace_is_refused(self) -> None:
        elsewhere = os.path.join(self.tmp, "beta")
        shutil.copytree(self.ws, elsewhere, symlinks=True)
        with self.assertRaises(VerificationError) as e:
            verify_workspace(elsewhere, self.keys)
        self.assertIn("made in workspace " + os.path.basename(WS), str(e.exception))

    def test_a_member_named_twice_is_refused(self) -> None:
        path = os.path.join(self.ws, "decision.json")
        with open(path, "rb") as f:
            text = f.read().decode()
        with open(path, "w") as f:
            f.write(text.replace('"outcome"', '"outcome": "rejected", "outcome"', 1))
        self.refused_alike("a JSON member is named twice")

    def test_an_outcome_not_asked_for_is_refused(self) -> None:
        with self.assertRaises(VerificationError) as e:
            verify_workspace(self.ws, self.keys, outcomes=("rejected",))
        self.assertIn("outcome approved not accepted", str(e.exception))

    def test_a_changed_artifact_is_refused(self) -> None:
        with open(os.path.join(self.ws, "inbox", "notes.md"), "a") as f:
            f.write("one more line\n")
        self.refused_alike("inbox/notes.md changed")


if __name__ == "__main__":
    unittest.main()
