"""Checks baton's Slack output and signing against slack_sdk itself.

usage: sdk.py blocks FILE            each block of the JSON blocks array in FILE parses with
                                     slack_sdk.models.blocks and validates; prints "ok"
       sdk.py view FILE              the JSON view in FILE parses with slack_sdk.models.views.View
                                     and validates, its blocks too; prints "ok"
       sdk.py sign SECRET TS BODYFILE    prints the v0= signature slack_sdk's verifier accepts
       sdk.py verify SECRET TS SIG BODYFILE   prints "valid" or "invalid" (slack_sdk's verdict)
"""

import json
import sys
import time

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.signature import SignatureVerifier

cmd = sys.argv[1]
if cmd == "blocks":
    blocks = json.load(open(sys.argv[2]))
    parsed = Block.parse_all(blocks)
    assert len(parsed) == len(blocks), (parsed, blocks)
    for original, block in zip(blocks, parsed):
        block.validate_json()
        assert block.to_dict()["type"] == original["type"], (block.to_dict(), original)
        if original["type"] == "actions":
            values = [e.to_dict().get("value") for e in block.elements]
            assert values == [e.get("value") for e in original["elements"]], values
    print("ok")
elif cmd == "view":
    original = json.load(open(sys.argv[2]))
    view = View(**original)
    view.validate_json()
    for block in view.blocks:
        block.validate_json()
    again = view.to_dict()
    for k in ("type", "callback_id", "private_metadata"):
        assert again[k] == original[k], (k, again[k], original[k])
    assert len(again["blocks"]) == len(original["blocks"]), again
    print("ok")
elif cmd == "sign":
    secret, ts, body = sys.argv[2], sys.argv[3], open(sys.argv[4], "rb").read()
    verifier = SignatureVerifier(secret)
    print(verifier.generate_signature(timestamp=ts, body=body))
elif cmd == "verify":
    secret, ts, sig, body = sys.argv[2], sys.argv[3], sys.argv[4], open(sys.argv[5], "rb").read()
    verifier = SignatureVerifier(secret)
    ok = verifier.is_valid(body=body, timestamp=ts, signature=sig)
    print("valid" if ok else "invalid")
