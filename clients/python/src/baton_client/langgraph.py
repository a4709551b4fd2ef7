"""LangGraph: a node stops with `interrupt()`, a person decides in baton, the graph resumes
with the decision (`Command(resume=...)`).

Inside a node, `ask(...)` interrupts with the handoff (its `id` made up there, so the key is
in the interrupt's value and, through the checkpointer, in the graph's state). Outside,
`run(graph, input, config, baton)` runs the graph, hands every pending baton interrupt to
baton, waits for each (signed) decision and resumes the graph with it, until the graph ends.
Nothing waits in memory only: after a restart, `resume(graph, config, baton)` reads the pending
interrupts back from the checkpointer, finds (or, if it never got there, submits) their
handoffs by key, and goes on. Needs `langgraph` (the `[langgraph]` extra).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from langgraph.types import Command, interrupt

from .client import Baton, prepare
from .decision import Decision
from .errors import BatonError, HandoffClosed

#: The member of an interrupt's value that holds a baton handoff.
PAYLOAD = "baton_handoff"

_START = object()


def ask(handoff: Optional[Mapping[str, Any]] = None, *, closed_ok: bool = False, **fields: Any) -> Decision:
    """Call inside a node: stops the graph until a person decides `handoff` (plus `fields`),
    then returns the decision (approved, rejected or changes_requested: branch on
    `decision.approved`, and read `comment`, `instructions`, `remaining`). A handoff withdrawn,
    expired, invalid or reassigned raises HandoffClosed, whose message says what to do (the
    node's error), unless `closed_ok`."""
    doc = prepare({**(handoff or {}), **fields})
    answer = interrupt({PAYLOAD: doc})
    if not isinstance(answer, Mapping) or "outcome" not in answer:
        raise BatonError(
            f"the graph was resumed with {answer!r} where handoff {doc['id']} waits for a baton "
            "decision: resume it with baton_client.langgraph.run or resume"
        )
    decision = Decision.from_resume(dict(answer))
    if decision.outcome.closed and not closed_ok:
        raise HandoffClosed(decision.message(), decision)
    return decision


def pending(graph: Any, config: Mapping[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """The baton interrupts the graph is stopped at, from its checkpoint: (interrupt id,
    handoff)."""
    snapshot = graph.get_state(config)
    found = []
    for it in getattr(snapshot, "interrupts", ()) or ():
        value = getattr(it, "value", None)
        if isinstance(value, Mapping) and isinstance(value.get(PAYLOAD), Mapping):
            found.append((it.id, dict(value[PAYLOAD])))
    return found


def answers(
    graph: Any, config: Mapping[str, Any], baton: Baton, timeout: Optional[float] = None
) -> Dict[str, Dict[str, Any]]:
    """Hands each pending baton interrupt to baton (one at a time: a workspace holds one pending
    handoff) and waits for its decision; returns the resume values by interrupt id. A
    WaitTimeout leaves the graph where it is: call `resume` later."""
    if baton.keys is None:
        raise BatonError(
            "a graph resumes only on a checked decision: give Baton(..., keys=load_keys(...)) "
            "the daemon's public keys (`baton keys`)"
        )
    resume: Dict[str, Dict[str, Any]] = {}
    for interrupt_id, handoff in pending(graph, config):
        decision = baton.wait(baton.ensure_submitted(handoff), timeout)
        resume[interrupt_id] = decision.to_json()
    return resume


def run(
    graph: Any,
    input: Any,
    config: Mapping[str, Any],
    baton: Baton,
    timeout: Optional[float] = None,
    max_rounds: int = 100,
) -> Any:
    """Runs `graph` on `input` (with a checkpointer and `config`'s thread), answering its baton
    interrupts through baton until it ends; returns the graph's last output."""
    result = graph.invoke(input, config) if input is not _START else None
    for _ in range(max_rounds):
        resume = answers(graph, config, baton, timeout)
        if not resume:
            return result if result is not None else graph.get_state(config).values
        result = graph.invoke(Command(resume=resume), config)
    raise BatonError(f"the graph stopped for a person more than {max_rounds} times; is it looping?")


def resume(
    graph: Any, config: Mapping[str, Any], baton: Baton, timeout: Optional[float] = None
) -> Any:
    """After a restart (or a WaitTimeout): picks up the graph's pending baton interrupts from
    its checkpoint and goes on as `run` does."""
    return run(graph, _START, config, baton, timeout)
