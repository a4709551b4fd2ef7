"""Round trip of an agent's question through baton: submit -> a reviewer's API decision ->
the agent resumes with the checked decision. `python roundtrip.py MODE RUNS [POLL_S]`, MODE
`files`, `api` or `langgraph`; prints p50/p99 in milliseconds as one JSON line.

The reviewer is a thread of its own that lists pending handoffs through the API every 10 ms
and approves each (so the number is the machinery's, not a person's). Environment as for
agent_cases.py, plus BATON_REVIEWER_TOKEN.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
import urllib.request

from baton_client import Baton, load_keys

URL = os.environ["BATON_URL"]
WS = os.environ["BATON_WORKSPACE"]
KEYS = load_keys(os.environ["BATON_KEYS"])
AGENT = os.environ.get("BATON_AGENT", "builder")
REVIEWER = os.environ["BATON_REVIEWER_TOKEN"]


def reviewer(stop: threading.Event) -> None:
    auth = {"Authorization": f"Bearer {REVIEWER}"}
    while not stop.is_set():
        req = urllib.request.Request(f"{URL}/api/v1/handoffs?state=pending", headers=auth)
        with urllib.request.urlopen(req) as r:
            pending = json.loads(r.read())
        for h in pending:
            # An approval names what was read (the list's revision and digest).
            body = json.dumps({"outcome": "approved", "revision": h["revision"],
                               "handoff_sha256": h["handoff_sha256"]}).encode()
            req = urllib.request.Request(
                f"{URL}/api/v1/handoffs/{h['key']}/decision", data=body, method="POST",
                headers={**auth, "Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req).read()
            except urllib.error.HTTPError:
                pass  # decided meanwhile
        time.sleep(0.01)


def main(mode: str, runs: int, poll_s: float) -> None:
    if mode == "api":
        client = Baton(url=URL, token=os.environ["BATON_AGENT_TOKEN"],
                       workspace_name=os.path.basename(WS), keys=KEYS, poll_s=poll_s)
    else:
        client = Baton(WS, keys=KEYS, poll_s=poll_s)
    step = None
    if mode == "langgraph":
        from typing import TypedDict

        from langgraph.checkpoint.memory import MemorySaver
        from langgraph.graph import END, START, StateGraph

        from baton_client.langgraph import ask, run

        class State(TypedDict, total=False):
            outcome: str

        def review(state: State) -> State:
            return {"outcome": ask(task_id="rt", from_agent=AGENT, title="round trip").outcome.value}

        b = StateGraph(State)
        b.add_node("review", review)
        b.add_edge(START, "review")
        b.add_edge("review", END)
        graph = b.compile(checkpointer=MemorySaver())

        def step(i: int) -> str:  # noqa: F811
            return run(graph, {}, {"configurable": {"thread_id": f"rt-{i}"}}, client, timeout=30)["outcome"]
    else:
        def step(i: int) -> str:
            return client.request({"task_id": "rt", "from_agent": AGENT, "title": f"round trip {i}"},
                                  timeout=30).outcome.value

    stop = threading.Event()
    t = threading.Thread(target=reviewer, args=(stop,), daemon=True)
    t.start()
    times = []
    try:
        for i in range(runs):
            t0 = time.perf_counter()
            outcome = step(i)
            times.append((time.perf_counter() - t0) * 1000)
            if outcome != "approved":
                raise SystemExit(f"run {i}: {outcome}")
    finally:
        stop.set()
    times.sort()
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    print(json.dumps({"mode": mode, "runs": runs, "poll_s": poll_s,
                      "p50_ms": round(statistics.median(times), 1), "p99_ms": round(p99, 1),
                      "max_ms": round(times[-1], 1)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.05)
