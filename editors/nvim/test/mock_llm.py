#!/usr/bin/env python3
"""A loopback mock LLM for the Neovim plugin tests: OpenAI Chat Completions over SSE.

Usage: mock_llm.py SCRIPT.json PORT_FILE [REQUEST_LOG]
SCRIPT.json is a list of replies, served one per POST /v1/chat/completions, in order
(an exhausted script answers "Default mock answer."). A reply with "for": MARKER is kept
apart, for requests whose body contains MARKER (a team member's role prompt): such a request
takes the next reply for its marker, in script order, and never one of the others, so agents
running at the same time each get their own. A reply is an object with optional
  "thinking": list of reasoning chunks streamed as `delta.reasoning_content`,
  "text":  list of text chunks streamed as `delta.content`,
  "tool":  {"id", "name", "arguments"} one tool call (finish_reason "tool_calls"),
  "stall": true  keep the connection open after the text chunks (for cancel tests).
Each request body is appended to REQUEST_LOG (one JSON line each) when given, so a test can
check what ratchet sent the model (tool results). The chosen port is written to PORT_FILE once the server listens, so the caller never races.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK_DELAY_S = 0.01
STALL_LIMIT_S = 60


DEFAULT_REPLY = {"text": ["Default mock answer."]}


class Script:
    def __init__(self, replies):
        self.replies = [r for r in replies if "for" not in r]
        # marker -> its replies, in script order (dicts keep the markers' first-seen order).
        self.by_marker = {}
        for r in replies:
            if "for" in r:
                self.by_marker.setdefault(r["for"], []).append(r)
        self.lock = threading.Lock()

    def next(self, body):
        with self.lock:
            for marker, queue in self.by_marker.items():
                if marker in body:
                    return queue.pop(0) if queue else DEFAULT_REPLY
            if self.replies:
                return self.replies.pop(0)
        return DEFAULT_REPLY


def chunk(model, delta, finish=None):
    body = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return "data: " + json.dumps(body) + "\n\n"


def frames_for(reply, model):
    yield chunk(model, {"role": "assistant", "content": ""})
    for thought in reply.get("thinking", []):
        yield chunk(model, {"reasoning_content": thought})
    for text in reply.get("text", []):
        yield chunk(model, {"content": text})
    if reply.get("stall"):
        return
    finish = "stop"
    tool = reply.get("tool")
    if tool:
        args = json.dumps(tool["arguments"])
        yield chunk(model, {"tool_calls": [{"index": 0, "id": tool["id"], "type": "function",
                                            "function": {"name": tool["name"], "arguments": ""}}]})
        yield chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": args}}]})
        finish = "tool_calls"
    yield chunk(model, {}, finish)
    usage = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1700000000,
             "model": model, "choices": [],
             "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}}
    yield "data: " + json.dumps(usage) + "\n\n"
    yield "data: [DONE]\n\n"


def make_handler(script, request_log):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            try:
                model = json.loads(body).get("model", "mock-model")
            except ValueError:
                model = "mock-model"
            if request_log:
                with open(request_log, "ab") as log:
                    log.write(body.replace(b"\n", b" ") + b"\n")
            reply = script.next(body.decode("utf-8", "replace"))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            try:
                for frame in frames_for(reply, model):
                    time.sleep(CHUNK_DELAY_S)
                    self.wfile.write(frame.encode())
                    self.wfile.flush()
                if reply.get("stall"):
                    time.sleep(STALL_LIMIT_S)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

    return Handler


def main():
    script_path, port_file = sys.argv[1], sys.argv[2]
    request_log = sys.argv[3] if len(sys.argv) > 3 else None
    with open(script_path) as f:
        script = Script(json.load(f))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script, request_log))
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
