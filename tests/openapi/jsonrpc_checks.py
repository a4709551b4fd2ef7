"""schemathesis checks for the A2A JSON-RPC endpoint (POST /api/v1/a2a), loaded through
SCHEMATHESIS_HOOKS by tests/openapi.rs.

JSON-RPC over HTTP refuses a request with HTTP 200 and an `error` member, so the schemathesis
configuration lets `negative_data_rejection` take 200 for that one operation; this check is what
holds the daemon to the rejection instead: a request the document says is invalid must be
answered with an error envelope (an `error` member, no `result`), with the id echoed when it is
one a request may carry (a string, an integer, null) and null otherwise.
"""

import json

import schemathesis

RPC_PATH = "/api/v1/a2a"


def echoable(id):
    """An id JSON-RPC answers with as sent: a string, null, or an integer of 64 bits."""
    if isinstance(id, bool):
        return False
    if isinstance(id, int):
        return -(2**63) <= id < 2**64
    return id is None or isinstance(id, str)


@schemathesis.check
def jsonrpc_refuses_invalid_requests(ctx, response, case):
    if case.path != RPC_PATH or case.method.upper() != "POST" or response.status_code != 200:
        return None
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return None
    if response.headers.get("content-type", [""])[0].startswith("text/event-stream"):
        raise AssertionError("an invalid JSON-RPC request opened an event stream")
    answer = json.loads(response.content)
    if "error" not in answer or "result" in answer:
        raise AssertionError(f"an invalid JSON-RPC request was answered with a result: {answer}")
    sent = case.body
    if isinstance(sent, dict) and "id" in sent:
        expected = sent["id"] if echoable(sent["id"]) else None
        if answer.get("id") != expected:
            raise AssertionError(f"the answer's id is {answer.get('id')!r}, not {expected!r}")
    return None
