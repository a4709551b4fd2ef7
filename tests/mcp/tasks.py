"""MCP tasks (revision 2025-11-25) through the official Python SDK (`mcp` on PyPI): submit_handoff
called as a task, polled with tasks/get, its decision fetched with tasks/result; every answer is
parsed with the SDK's own types (mcp.types), so a shape the SDK refuses fails the run.

Usage: tasks.py BATON CONFIG WORKSPACE ID SCENARIO, SCENARIO one of
  decide: wait until the test decides (or withdraws, or expires) the handoff, then fetch the result;
  cancel: cancel the task while the handoff is pending.
Prints one JSON object a line, for tests/mcp.rs.
"""

import asyncio
import json
import os
import sys

import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.extension import NotificationBinding
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher

TERMINAL = ("completed", "failed", "cancelled")


def say(**fields):
    print(json.dumps(fields), flush=True)


def dump(model):
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


async def main(baton, config, workspace, key, scenario):
    # BATON_KEY: the server takes only decisions signed by these keys (the receipt checked).
    # BATON_URL and BATON_TOKEN: the daemon and the agent's token, with which tasks/cancel
    # withdraws the handoff.
    # BATON_MCP_AS_DAEMON_USER: the test runs the server as the daemon's user (tests/mcp.rs).
    passed = ("BATON_KEY", "BATON_URL", "BATON_TOKEN", "BATON_MCP_AS_DAEMON_USER")
    env = {"BATON_LOG": "error", **{k: os.environ[k] for k in passed if k in os.environ}}
    params = StdioServerParameters(command=baton, args=["mcp", "--config", config], env=env)
    notes = []

    async def noted(params):
        notes.append(dump(params))

    binding = NotificationBinding(
        method="notifications/tasks/status", params_type=types.TaskStatusNotificationParams, handler=noted
    )
    async with stdio_client(params) as streams:
        # The SDK's dispatcher sends the task-augmented call as is: ClientSession.call_tool
        # checks every tools/call answer against CallToolResult, and a task's is CreateTaskResult.
        dispatcher = JSONRPCDispatcher(streams[0], streams[1])
        async with ClientSession(dispatcher=dispatcher, notification_bindings=[binding]) as session:
            init = await session.initialize()
            say(step="capabilities", tasks=dump(init.capabilities.tasks) if init.capabilities.tasks else None)
            tools = await session.list_tools()
            say(step="tools", execution={t.name: dump(t.execution) if t.execution else None for t in tools.tools})

            handoff = {
                "handoff_version": "1", "id": key, "task_id": "mcp-tasks", "from_agent": "python-agent",
                "title": "Submitted as an MCP task", "confidence": 0.6,
            }
            call = {"name": "submit_handoff", "arguments": {"workspace": workspace, "handoff": handoff}, "task": {"ttl": 600000}}
            created = types.CreateTaskResult.model_validate(await dispatcher.send_raw_request("tools/call", call))
            task_id = created.task.task_id
            say(step="created", task=dump(created.task))

            got = await session.send_request(types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=task_id)), types.GetTaskResult)
            say(step="polled", task=dump(got))

            if scenario == "cancel":
                cancelled = await session.send_request(
                    types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task_id)), types.CancelTaskResult
                )
                say(step="cancelled", task=dump(cancelled))
            else:
                # Poll at the interval the server asks for, as the spec says, until the task ends.
                while got.status not in TERMINAL:
                    await asyncio.sleep((got.poll_interval or 1000) / 1000)
                    got = await session.send_request(
                        types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=task_id)), types.GetTaskResult
                    )
                say(step="ended", task=dump(got))

            result = await session.send_request(
                types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(task_id=task_id)), types.CallToolResult
            )
            say(step="result", result=dump(result))
            listed = await session.send_request(types.ListTasksRequest(), types.ListTasksResult)
            say(step="listed", tasks=[dump(t) for t in listed.tasks])
            try:
                await session.send_request(types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task_id)), types.CancelTaskResult)
                say(step="cancel_ended", error=None)
            except MCPError as e:
                say(step="cancel_ended", code=e.code, message=e.error.message)
            # An unknown task: the error comes back to this request (the SDK matches answers by id).
            try:
                await dispatcher.send_raw_request("tasks/get", {"taskId": "no-such-task"}, {"request_id": "unknown-77"})
                say(step="unknown", error=None)
            except MCPError as e:
                say(step="unknown", code=e.code, message=e.error.message)
            await asyncio.sleep(0.3)
            say(step="notes", notes=notes)


if __name__ == "__main__":
    try:
        asyncio.run(main(*sys.argv[1:6]))
    except Exception as e:  # a failure is reported as a line too, for the test to show
        say(step="failed", error=repr(e))
        raise
