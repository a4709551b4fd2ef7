"""What can go wrong, as exceptions whose message says what happened and what to do next.

The messages are written to be shown to a model as they are: each names the handoff and the
step that failed, and the way on.
"""

from __future__ import annotations

from typing import List, Optional


class BatonError(Exception):
    """Anything the client could not do."""


class SubmitError(BatonError):
    """The handoff was not written or not accepted (bad path, the API said no)."""

    def __init__(self, message: str, status: Optional[int] = None, body: object = None):
        super().__init__(message)
        self.status = status
        self.body = body


class WaitTimeout(BatonError):
    """No decision came within the wait (`baton wait` exit 7). The handoff stays pending:
    wait again later with the same key, nothing needs submitting again."""

    exit_code = 7

    def __init__(self, message: str, key: str, refused: Optional[str] = None):
        super().__init__(message)
        self.key = key
        #: Why a decision that was found was not taken (its attestation did not check out).
        self.refused = refused


class VerificationError(BatonError):
    """A decision's attestation does not check out: it is not taken as a person's answer."""

    def __init__(self, reasons: List[str]):
        super().__init__(
            "the decision is not taken, its attestation is refused: "
            + "; ".join(reasons)
            + ". Do not act on it; ask the operator whether the daemon's keys changed "
            "(`baton keys`) or someone wrote decision.json by hand."
        )
        self.reasons = reasons


class HandoffClosed(BatonError):
    """The handoff ended without a person's answer to act on: withdrawn, expired, invalid or
    reassigned. The message says what to do next."""

    def __init__(self, message: str, decision: object):
        super().__init__(message)
        self.decision = decision
