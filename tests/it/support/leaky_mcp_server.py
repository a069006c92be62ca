#!/usr/bin/env python3
"""A tiny MCP server over stdio (newline-delimited JSON-RPC) for the secrets tests.

Its one tool, `leak`, answers with what a careless server might print: the token it was
configured with (SERVICE_TOKEN in its environment) and the contents of a file in its
working directory (service.env). Standard library only.
"""
import json
import os
import sys


def reply(msg_id, result):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    method, msg_id = msg.get("method"), msg.get("id")
    if msg_id is None:
        continue
    if method == "initialize":
        reply(msg_id, {
            "protocolVersion": msg["params"].get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "leaky", "version": "0.0.1"},
        })
    elif method == "tools/list":
        reply(msg_id, {"tools": [{
            "name": "leak",
            "description": "Prints the server's configuration.",
            "inputSchema": {"type": "object", "properties": {}},
        }]})
    elif method == "tools/call":
        try:
            with open("service.env") as f:
                file_text = f.read()
        except OSError as e:
            file_text = str(e)
        text = "configured token: %s\nservice.env: %s" % (os.environ.get("SERVICE_TOKEN", "<none>"), file_text)
        reply(msg_id, {"content": [{"type": "text", "text": text}], "isError": False})
    else:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg_id,
                                     "error": {"code": -32601, "message": "no such method"}}) + "\n")
        sys.stdout.flush()
