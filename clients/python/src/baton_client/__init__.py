"""baton_client: hand work to a person through baton and act on the signed answer.

    from baton_client import Baton, load_keys
    baton = Baton("/srv/ws/alpha", keys=load_keys("trusted.keys"))
    decision = baton.request({"task_id": "T-1", "from_agent": "builder", "title": "..."}, timeout=600)
    if decision.approved: ...
"""

from .client import Baton, Submitted, handoff_bytes, prepare
from .decision import Decision, Outcome
from .errors import BatonError, HandoffClosed, SubmitError, VerificationError, WaitTimeout
from .receipts import fetch_keys, load_keys, parse_keys, verify_workspace

__all__ = [
    "Baton",
    "BatonError",
    "Decision",
    "HandoffClosed",
    "Outcome",
    "SubmitError",
    "Submitted",
    "VerificationError",
    "WaitTimeout",
    "fetch_keys",
    "handoff_bytes",
    "load_keys",
    "parse_keys",
    "prepare",
    "verify_workspace",
]

__version__ = "0.1.0"
