"""An MCP host nobody here wrote: the official Python SDK (`mcp` on PyPI) drives `baton mcp`.

Usage: client.py BATON CONFIG WORKSPACE. Prints one JSON object a line, for tests/mcp.rs:
the tools listed, an invalid handoff's problems, the submitted key, then (after the test
decides through the API) what wait_for_decision returned.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def say(**fields):
    print(json.dumps(fields), flush=True)


def dump(result):
    return result.model_dump(by_alias=True, exclude_none=True, mode="json")


async def main(baton, config, workspace):
    # BATON_URL: the daemon whose keys the server checks decision.json with, and which
    # `search` asks with the agent's BATON_TOKEN.
    # BATON_MCP_AS_DAEMON_USER: the test runs the server as the daemon's user (see tests/mcp.rs).
    env = {"BATON_LOG": "error", "BATON_URL": os.environ["BATON_URL"], "BATON_TOKEN": os.environ["BATON_TOKEN"],
           "BATON_MCP_AS_DAEMON_USER": os.environ.get("BATON_MCP_AS_DAEMON_USER", "")}
    params = StdioServerParameters(command=baton, args=["mcp", "--config", config], env=env)
    async with stdio_client(params) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            say(step="initialized", server=dump(init)["serverInfo"]["name"])
            tools = await session.list_tools()
            say(step="tools", tools={t.name: t.model_dump(by_alias=True, mode="json")["inputSchema"] for t in tools.tools})

            bad = {"handoff_version": "1.0", "task_id": "mcp-task", "confidence": 2}
            result = await session.call_tool("submit_handoff", {"workspace": workspace, "handoff": bad})
            say(step="invalid", result=dump(result))

            handoff = {
                "handoff_version": "1.0", "id": "mcp-1", "task_id": "mcp-task",
                "from_agent": "python-agent", "title": "Submitted over MCP", "confidence": 0.6,
                "remaining": ["ship it"],
            }
            cp = {"checkpoint_version": "1", "task_id": "mcp-task", "step": 1, "summary": "started"}
            result = await session.call_tool("write_checkpoint", {"workspace": workspace, "checkpoint": cp})
            say(step="checkpoint", result=dump(result))
            result = await session.call_tool("submit_handoff", {"workspace": workspace, "handoff": handoff})
            say(step="submitted", result=dump(result))

            result = await session.call_tool("wait_for_decision", {"workspace": workspace, "timeout_s": 120})
            say(step="decided", result=dump(result))
            result = await session.call_tool("get_handoff", {"workspace": workspace})
            say(step="handoff", result=dump(result))
            # The daemon indexes what it received within a second or so: ask until it shows.
            for _ in range(80):
                result = await session.call_tool("search", {"query": "Submitted over MCP", "kind": "handoff"})
                found = dump(result).get("structuredContent", {})
                if found.get("total", 0) > 0:
                    break
                await asyncio.sleep(0.25)
            say(step="search", result=dump(result))
            lock = {"workspace": workspace, "path": "inbox/report.md", "ttl_s": 60}
            result = await session.call_tool("lock_file", {**lock, "owner": "python-agent", "purpose": "editing"})
            say(step="locked", result=dump(result))
            result = await session.call_tool("lock_file", {**lock, "owner": "someone-else"})
            say(step="lock_refused", result=dump(result))
            token = dump(result).get("structuredContent", {}).get("holder", {}).get("token")
            result = await session.call_tool("unlock_file", {"workspace": workspace, "path": "inbox/report.md", "owner": "python-agent", "token": token})
            say(step="unlocked", result=dump(result))
            try:
                result = await session.call_tool("no_such_tool", {})
                say(step="unknown", result=dump(result))
            except Exception as e:  # the SDK raises JSON-RPC errors
                say(step="unknown", error=str(e))


if __name__ == "__main__":
    try:
        asyncio.run(main(*sys.argv[1:4]))
    except Exception as e:  # a failure is reported as a line too, for the test to show
        say(step="failed", error=repr(e))
        raise
