"""A decision as the agent reads it: the outcome (with `baton wait`'s exit code), who decided,
the reviewer's words, and what to do next (`instructions`, `remaining`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


class Outcome(str, enum.Enum):
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    INVALID = "invalid"
    EXPIRED = "expired"
    REASSIGNED = "reassigned"
    WITHDRAWN = "withdrawn"

    @property
    def exit_code(self) -> int:
        """The exit code `baton wait` gives this outcome (7, a timeout, is `WaitTimeout`)."""
        return _EXIT[self]

    @property
    def closed(self) -> bool:
        """True when no person answered the handoff itself (nothing to act on)."""
        return self in (Outcome.INVALID, Outcome.EXPIRED, Outcome.REASSIGNED, Outcome.WITHDRAWN)


_EXIT = {
    Outcome.APPROVED: 0,
    Outcome.REJECTED: 3,
    Outcome.CHANGES_REQUESTED: 4,
    Outcome.INVALID: 5,
    Outcome.EXPIRED: 6,
    Outcome.REASSIGNED: 8,
    Outcome.WITHDRAWN: 9,
}


@dataclass(frozen=True)
class Decision:
    """decision.json, read. `raw` is the whole document (its attestation included)."""

    handoff_key: str
    outcome: Outcome
    by: str
    at: str
    comment: Optional[str] = None
    instructions: Optional[str] = None
    remaining: Optional[List[str]] = None
    to_agent: Optional[str] = None
    errors: List[Dict[str, Any]] = field(default_factory=list)
    #: True when the attestation was checked against a trusted key and held.
    verified: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: Dict[str, Any], verified: bool = False) -> "Decision":
        return cls(
            handoff_key=str(doc.get("handoff_key", "")),
            outcome=Outcome(doc["outcome"]),
            by=str(doc.get("by", "")),
            at=str(doc.get("at", "")),
            comment=doc.get("comment"),
            instructions=doc.get("instructions"),
            remaining=doc.get("remaining"),
            to_agent=doc.get("to_agent"),
            errors=list(doc.get("errors") or []),
            verified=verified,
            raw=dict(doc),
        )

    def to_json(self) -> Dict[str, Any]:
        """The decision as JSON (what a checkpointer stores; `from_json` reads it back)."""
        doc = dict(self.raw) if self.raw else {
            "handoff_key": self.handoff_key,
            "outcome": self.outcome.value,
            "by": self.by,
            "at": self.at,
        }
        doc["baton_client_verified"] = self.verified
        return doc

    @property
    def approved(self) -> bool:
        return self.outcome is Outcome.APPROVED

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code

    def message(self) -> str:
        """One paragraph for a model: what was decided, the reviewer's words, what to do."""
        key, who = self.handoff_key, self.by
        words = f' Comment: "{self.comment}".' if self.comment else ""
        todo = ""
        if self.instructions:
            todo += f" Instructions: {self.instructions}."
        if self.remaining:
            todo += " Remaining: " + "; ".join(self.remaining) + "."
        o = self.outcome
        if o is Outcome.APPROVED:
            return f"{who} approved handoff {key} in baton.{words}{todo} Go on."
        if o is Outcome.REJECTED:
            return (f"{who} rejected handoff {key} in baton.{words} Do not do this; "
                    "pick another way or stop.")
        if o is Outcome.CHANGES_REQUESTED:
            return (f"{who} asked for changes to handoff {key} in baton.{words}{todo} Make "
                    "them and submit again with the same id.")
        if o is Outcome.WITHDRAWN:
            return (f"handoff {key} was withdrawn in baton ({self.comment or 'a newer handoff replaced it'}): "
                    "nobody will answer it. Submit it again if it is still needed.")
        if o is Outcome.EXPIRED:
            return (f"handoff {key} expired in baton before anyone decided ({self.comment or 'past its deadline'}): "
                    "treat it as not approved; submit again with a later deadline if it is still needed.")
        if o is Outcome.INVALID:
            problems = "; ".join(f"{e.get('pointer', '')}: {e.get('message', '')}" for e in self.errors)
            return (f"handoff {key} is invalid and was not shown to anyone: {problems or 'see decision.json'}. "
                    "Fix these and submit again.")
        return (f"handoff {key} was reassigned by {who} to {self.to_agent}.{words} "
                "Stop; that agent continues.")
