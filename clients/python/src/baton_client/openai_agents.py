"""OpenAI Agents SDK: a run that stops for tool approvals (`needs_approval` tools) is answered
through baton.

Each pending approval becomes a handoff showing the tool and its arguments; a person approves
(`state.approve(item)`) or rejects it (`state.reject(item)`, the reviewer's words as the
message the model reads), and the run resumes. Anything else that ends the handoff
(withdrawn, expired, invalid, reassigned, or no decision within the wait) is a rejection too,
saying why and what to do: nothing a person did not approve runs. Needs `openai-agents` (the
`[openai-agents]` extra).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from typing import Any, Dict, Optional

from agents import Runner

from .client import Baton
from .decision import Decision
from .errors import BatonError, WaitTimeout


def handoff_for(item: Any, task_id: str, from_agent: str) -> Dict[str, Any]:
    """The handoff for one `ToolApprovalItem`: the tool, its arguments, the agent asking. Its
    id is the task and the tool call's id (to be read at a glance) and a part made up at each
    call: nothing of a run binds a call to it for sure (a scripted or local model repeats call
    ids, some give none), so a decision about an earlier call, however alike, is never
    taken as this one's."""
    name = getattr(item, "tool_name", None) or getattr(item, "name", None) or "tool"
    raw_args = getattr(item, "arguments", None)
    try:
        args = json.loads(raw_args) if raw_args else {}
    except ValueError:
        args = {"arguments": raw_args}
    call_id = getattr(item, "call_id", None) or "call"
    agent = getattr(getattr(item, "agent", None), "name", None)
    shown = json.dumps(args, indent=2, ensure_ascii=False, sort_keys=True)
    stem = re.sub(r"[^A-Za-z0-9._:-]", "-", f"{task_id}.{call_id}")[:115]
    key = f"{stem}.{secrets.token_hex(6)}"
    return {
        "handoff_version": "1.0",
        "id": key,
        "task_id": task_id,
        "from_agent": from_agent,
        "title": f"Run tool {name}?",
        "summary": f"Agent {agent or from_agent} wants to call `{name}` with:\n{shown}",
        "trigger": "critical_action",
        "status": "blocked",
        "reason": "the tool needs a person's approval (needs_approval)",
        "context": {"tool": name, "arguments": args, "call_id": call_id, "agent": agent or ""},
        "expected_output": "approve to run the call as shown, or reject with the reason",
    }


def answer(state: Any, item: Any, decision: Optional[Decision], why: str = "") -> None:
    """Applies a decision to one approval: only a verified approval a person gave (its signed
    `policy` is `human`) approves. An approval no person gave (a route's `auto_approve_if`, a
    reviewer's grant) is a rejection saying so, as the Claude Code hook answers "ask" then:
    the tool needs a person's approval."""
    if decision is not None and decision.approved and decision.verified:
        if decision.raw.get("policy") == "human":
            state.approve(item)
            return
        state.reject(item, rejection_message=(
            f"Not run: {decision.by} approved this call in baton (handoff "
            f"{decision.handoff_key}), but no person did, and this tool runs only on a "
            "person's approval. Ask a person to approve it, or go on without it."
        ))
        return
    message = decision.message() if decision is not None else why
    state.reject(item, rejection_message=message)


async def run(
    agent: Any,
    input: Any,
    baton: Baton,
    *,
    task_id: str,
    from_agent: Optional[str] = None,
    timeout: Optional[float] = None,
    max_rounds: int = 100,
    **runner_kwargs: Any,
) -> Any:
    """`Runner.run(agent, input)`, with every tool approval it stops for decided in baton;
    returns the final RunResult. `from_agent` (default the agent's name) must be the name of
    the agent token when `baton` uses the HTTP API."""
    result = await Runner.run(agent, input, **runner_kwargs)
    return await resolve(result, agent, baton, task_id=task_id, from_agent=from_agent,
                         timeout=timeout, max_rounds=max_rounds, **runner_kwargs)


async def resolve(
    result: Any,
    agent: Any,
    baton: Baton,
    *,
    task_id: str,
    from_agent: Optional[str] = None,
    timeout: Optional[float] = None,
    max_rounds: int = 100,
    **runner_kwargs: Any,
) -> Any:
    """Answers the interruptions of `result` (a RunResult) through baton and resumes, until a
    run ends without any."""
    if baton.keys is None:
        raise BatonError(
            "tool calls are approved only on a checked decision: give Baton(..., keys=...) the "
            "daemon's public keys (`baton keys`)"
        )
    sender = from_agent or getattr(agent, "name", None) or "openai-agent"
    for _ in range(max_rounds):
        if not result.interruptions:
            return result
        state = result.to_state()
        for item in result.interruptions:
            handoff = handoff_for(item, task_id, sender)
            try:
                sub = await asyncio.to_thread(baton.submit, handoff)
                decision = await asyncio.to_thread(baton.wait, sub, timeout)
            except WaitTimeout as e:
                # Left pending in baton (a newer handoff withdraws it), but no longer waited on:
                # a call asked again is a new handoff.
                answer(state, item, None,
                       f"Not run: nobody decided on this call to `{handoff['context']['tool']}` in time "
                       f"(handoff {e.key} is still pending in baton, no longer waited on). Try again "
                       "later (the call is asked anew), or go on without it.")
                continue
            answer(state, item, decision)
        result = await Runner.run(agent, state, **runner_kwargs)
    raise BatonError(f"the run stopped for approvals more than {max_rounds} times; is it looping?")
