"""LangGraph: a node stops with `interrupt()`, a person decides in baton, the graph resumes
with the decision (`Command(resume=...)`).

Inside a node, `ask(...)` interrupts with the handoff, its `id` fixed before the interrupt from
where the graph stands (thread, task, which ask of the node), so the key is in the interrupt's
value and, through the checkpointer, in the graph's state, and the node asks for the same key
when it runs again on resume. Outside,
`run(graph, input, config, baton)` runs the graph, hands every pending baton interrupt to
baton, waits for each (signed) decision and resumes the graph with it, until the graph ends.
Nothing waits in memory only: after a restart, `resume(graph, config, baton)` reads the pending
interrupts back from the checkpointer, finds (or, if it never got there, submits) their
handoffs by key, and goes on. Needs `langgraph` (the `[langgraph]` extra).
"""

from __future__ import annotations

import hashlib
import json
import re
from contextvars import ContextVar
from typing import Any, Dict, List, Mapping, Optional, Tuple

from langgraph.config import get_config
from langgraph.types import Command, interrupt

try:
    from langgraph._internal._constants import CONFIG_KEY_SCRATCHPAD
except ImportError:  # pragma: no cover - older langgraph
    CONFIG_KEY_SCRATCHPAD = "__pregel_scratchpad"

from . import receipts
from .client import Baton, Submitted, prepare
from .decision import Decision
from .errors import BatonError, HandoffClosed, VerificationError

#: The member of an interrupt's value that holds a baton handoff.
PAYLOAD = "baton_handoff"

_START = object()

#: The (keys, workspace) pairs `run` and `resume` wait with in this process: what `ask` checks
#: a resume value against when it is given none.
_TRUSTED: Dict[str, Any] = {}

#: How many `ask`s the running node made so far, with the task run (its scratchpad) they
#: belong to: a node that asks twice asks for two handoffs.
_ASKED: ContextVar[Tuple[Any, int]] = ContextVar("baton_asked")


def ask(
    handoff: Optional[Mapping[str, Any]] = None,
    *,
    closed_ok: bool = False,
    keys: Optional[Any] = None,
    workspace: Optional[str] = None,
    **fields: Any,
) -> Decision:
    """Call inside a node: stops the graph until a person decides `handoff` (plus `fields`),
    then returns the decision (approved, rejected or changes_requested: branch on
    `decision.approved`, and read `comment`, `instructions`, `remaining`). A handoff withdrawn,
    expired, invalid or reassigned raises HandoffClosed, whose message says what to do (the
    node's error), unless `closed_ok`.

    Whoever can resume the graph (its server's API, Studio) chooses the value `interrupt`
    returns, so the value is taken only as a decision signed by a trusted key about this very
    handoff: checked against `keys` and `workspace` when given (a graph resumed by something
    other than `run` / `resume`), else against those `run` / `resume` waited with in this
    process. Anything else raises BatonError.

    Without an `id`, the handoff's key is made from the graph's thread, the task (its
    checkpoint namespace, new at every run of the node on every thread) and which `ask` of the
    node this is: the same when the node runs again on resume, another in any other run. So an
    approval given in another run or thread is refused here, however alike the handoffs. An
    `id` you give is the key as given: a decision about it is taken wherever a handoff with that
    id and the same content is asked, so make it unique to the run."""
    given = {**(handoff or {}), **fields}
    if given.get("id") is None:
        given["id"] = _run_key(given.get("task_id"))
    doc = prepare(given)
    answer = interrupt({PAYLOAD: doc})
    if not isinstance(answer, Mapping) or "outcome" not in answer:
        raise BatonError(
            f"the graph was resumed with {answer!r} where handoff {doc['id']} waits for a baton "
            "decision: resume it with baton_client.langgraph.run or resume"
        )
    decision = _checked(doc, dict(answer), keys, workspace)
    if decision.outcome.closed and not closed_ok:
        raise HandoffClosed(decision.message(), decision)
    return decision


def _run_key(task_id: Any) -> str:
    """The key of the handoff the running node asks for now. It never comes from the resume
    value: whoever resumes the graph chooses that, and would name an approval from another
    run."""
    try:
        conf = get_config().get("configurable") or {}
    except RuntimeError:
        conf = {}
    thread, ns, pad = conf.get("thread_id"), conf.get("checkpoint_ns"), conf.get(CONFIG_KEY_SCRATCHPAD)
    if thread is None or ns is None or pad is None:
        raise BatonError(
            "ask() without id= runs inside a node of a graph compiled with a checkpointer and "
            "invoked with a thread (config {'configurable': {'thread_id': ...}}): its key is made "
            "from them. Run it there, or give ask(id=...) a key unique to this run"
        )
    before = _ASKED.get(None)
    nth = before[1] + 1 if before is not None and before[0] is pad else 0
    _ASKED.set((pad, nth))
    where = json.dumps([str(thread), str(ns), nth]).encode()
    stem = re.sub(r"[^A-Za-z0-9._:-]", "-", task_id)[:100] if isinstance(task_id, str) else ""
    return f"{stem or 'handoff'}-{hashlib.sha256(where).hexdigest()[:24]}"


def _checked(doc: Dict[str, Any], answer: Dict[str, Any], keys: Any, workspace: Optional[str]) -> Decision:
    """The resume value as a decision signed about `doc`, or BatonError saying why not."""
    answer.pop("baton_client_verified", None)  # a claim of the stored value: never taken
    if answer.get("handoff_key") != doc["id"]:
        raise BatonError(
            f"the graph was resumed with the answer to handoff {answer.get('handoff_key')!r} where "
            f"handoff {doc['id']} waits (an answer given in another run or thread is not taken "
            "here): resume it with baton_client.langgraph.run or resume"
        )
    if keys is not None:
        if workspace is None:
            raise BatonError("ask(keys=...) needs workspace= (the name of the handoff's workspace)")
        trusted = [(receipts.load_keys(keys) if not isinstance(keys, Mapping) else keys, workspace)]
    else:
        trusted = list(_TRUSTED.values())
    if not trusted:
        raise BatonError(
            f"handoff {doc['id']} was answered, but nothing here can check the answer: resume the "
            "graph with baton_client.langgraph.run or resume (with Baton(..., keys=...)), or give "
            "ask(keys=..., workspace=...) the daemon's public keys (`baton keys`)"
        )
    digests = Submitted(doc["id"], doc).digests
    reasons = []
    for k, ws in trusted:
        try:
            signed = receipts.check_decision(answer, k, ws, digests)
        except VerificationError as e:
            reasons.extend(e.reasons)
            continue
        return Decision.from_json({**signed, "attestation": answer["attestation"]}, verified=True)
    raise BatonError(
        f"the graph was resumed with an answer to handoff {doc['id']} that is not a signed baton "
        f"decision about it ({'; '.join(sorted(set(reasons)))}): not taken. Resume it with "
        "baton_client.langgraph.run or resume"
    )


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
    _TRUSTED[f"{id(baton.keys)}:{baton.name}"] = (baton.keys, baton.name)
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
