"""wait_for_decision answers for the handoff it began waiting on, through the official Python
SDK: submit w-2, then wait; the test supersedes w-2 with w-3 once the server's log (standard
error, passed through) says the wait began.

Usage: superseded.py BATON CONFIG WORKSPACE. Prints one JSON object a line, for tests/mcp.rs.
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
    # info: the server logs which handoff a wait is for; the test waits for that line.
    # BATON_URL: the daemon whose keys the server checks decision.json with.
    # BATON_MCP_AS_DAEMON_USER: the test runs the server as the daemon's user (see tests/mcp.rs).
    env = {"BATON_LOG": "info", "BATON_URL": os.environ["BATON_URL"],
           "BATON_MCP_AS_DAEMON_USER": os.environ.get("BATON_MCP_AS_DAEMON_USER", "")}
    params = StdioServerParameters(command=baton, args=["mcp", "--config", config], env=env)
    async with stdio_client(params) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            handoff = {"handoff_version": "1", "id": "w-2", "task_id": "t", "from_agent": "python-agent"}
            result = await session.call_tool("submit_handoff", {"workspace": workspace, "handoff": handoff})
            say(step="submitted", result=dump(result))
            result = await session.call_tool("wait_for_decision", {"workspace": workspace, "timeout_s": 15})
            say(step="answered", result=dump(result))


if __name__ == "__main__":
    try:
        asyncio.run(main(*sys.argv[1:4]))
    except Exception as e:  # a failure is reported as a line too, for the test to show
        say(step="failed", error=repr(e))
        raise
