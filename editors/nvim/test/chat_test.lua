-- Headless end-to-end tests of ratchet.nvim: the real plugin, the real `ratchet acp`, the
-- loopback mock LLM (replies scripted in script.json, consumed in the order below).
local plugin_dir = assert(os.getenv("RATCHET_PLUGIN_DIR"))
local test_dir = plugin_dir .. "/test"
local workspace = vim.fs.normalize(assert(os.getenv("RATCHET_TEST_WORKSPACE")))
vim.opt.runtimepath:prepend(plugin_dir)
vim.cmd("runtime plugin/ratchet.lua")
vim.cmd.cd(workspace)

local ratchet = require("ratchet")
local screen = dofile(test_dir .. "/screen.lua")
ratchet.setup({ cmd = { assert(os.getenv("RATCHET_TEST_BIN")) } })

local TIMEOUT_MS = 20000
local failures, passed = 0, 0

local function wait_for(what, cond)
  if not vim.wait(TIMEOUT_MS, cond, 20) then error("timed out waiting for " .. what, 2) end
end

local function check(cond, msg)
  if not cond then error(msg, 2) end
end

local function session() return ratchet.sessions[workspace] end

local function chat_text() return session().chat:text() end

local function wait_turns(n)
  wait_for(n .. " finished turn(s)", function() return #session().stop_reasons >= n end)
end

--- Answers every permission prompt with the option of kind `permission_answer` ("hold": keeps
--- the prompt open in `held_permission`) and records the prompt.
local permission_prompts = {}
local permission_answer = "allow_once"
local held_permission = nil
--- Prompts of form fields asked with vim.ui.select (a choice: "reject"; a multi-select: none).
local elicitation_prompts = {}
local plan_decision = "reject"
--- The mode before :RatchetMode (the picker chooses another one).
local current_mode = nil
--- The session id the session picker chooses (nil: the first listed).
local pick_session_id = nil
vim.ui.select = function(items, opts, on_choice)
  if opts.kind == "ratchet_permission" then
    table.insert(permission_prompts, opts.prompt)
    if permission_answer == "hold" then
      held_permission = on_choice
      return
    end
    for _, item in ipairs(items) do
      if item.kind == permission_answer then return on_choice(item) end
    end
    error("no " .. permission_answer .. " option among " .. vim.inspect(items))
  end
  if opts.kind == "ratchet_session" and pick_session_id then
    for _, item in ipairs(items) do
      if item.sessionId == pick_session_id then return on_choice(item) end
    end
    error(pick_session_id .. " not among listed sessions " .. vim.inspect(items))
  end
  if opts.kind == "ratchet_config" then
    for _, item in ipairs(items) do
      if not item.name:find("^%*") and item.value ~= current_mode then return on_choice(item) end
    end
  end
  if opts.kind == "ratchet_elicitation" then
    table.insert(elicitation_prompts, opts.prompt)
    for _, item in ipairs(items) do
      if item.value == plan_decision then return on_choice(item) end
    end
    for _, item in ipairs(items) do
      if item.value == nil then return on_choice(item) end -- "(done)" of a multi-select
    end
  end
  return on_choice(items[1])
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

--- docs/nvim-chat.md is what the chat looks like mid-conversation: the screen of the picture
--- test (its text, and docs/nvim-chat.png drawn from it) and the whole chat buffer at the end
--- of the cancel test (tool calls, diffs, a plan, thoughts, a cancel), the temp path replaced.
--- The test fails when the rendering changes; RATCHET_NVIM_UPDATE_SNAPSHOT=1 rewrites both.
local DOCS = plugin_dir .. "/../../docs"
local SNAPSHOT = DOCS .. "/nvim-chat.md"
local PICTURE = DOCS .. "/nvim-chat.png"
local UPDATE = os.getenv("RATCHET_NVIM_UPDATE_SNAPSHOT") == "1"
--- The picture's screen as text, once the picture test ran.
local screen_text = nil
local function check_snapshot()
  local lines = vim.api.nvim_buf_get_lines(session().chat.buf, 0, -1, false)
  local bar = vim.wo[vim.fn.win_findbuf(session().chat.buf)[1]].winbar
  local body = table.concat(lines, "\n"):gsub(vim.pesc(workspace), "/home/you/project")
  local doc = "# The ratchet.nvim chat buffer\n\n"
    .. "![The ratchet.nvim chat in Neovim 0.11: a tool call with its diff, a plan, a folded thought](nvim-chat.png)\n\n"
    .. "Made by `editors/nvim/test/chat_test.lua` from its headless Neovim session, against the real\n"
    .. "binary and the mock model: the picture is that Neovim's screen (a UI attached to it, 100x34,\n"
    .. "stock colours and `syntax on`) drawn to PNG; below are the same screen as text and the whole\n"
    .. "chat buffer a turn later. The test fails if the rendering drifts from this file or the picture.\n\n"
    .. "## The screen\n\n````text\n" .. (screen_text or "(the picture test did not run)") .. "\n````\n\n"
    .. "## The whole buffer\n\nWinbar: `" .. bar .. "`\n\n````markdown\n" .. body .. "\n````\n"
  if UPDATE then
    local f = assert(io.open(SNAPSHOT, "wb"))
    f:write(doc)
    f:close()
    return
  end
  local f = io.open(SNAPSHOT, "rb")
  check(f, SNAPSHOT .. " is missing; run with RATCHET_NVIM_UPDATE_SNAPSHOT=1")
  local want = f:read("*a")
  f:close()
  check(want == doc, "the chat rendering changed; compare with " .. SNAPSHOT
    .. " (RATCHET_NVIM_UPDATE_SNAPSHOT=1 rewrites it). Now:\n" .. doc)
end

local tests = {}

tests[#tests + 1] = { "rpc: framing across chunk boundaries, and ids correlated both ways (against `cat`)", function()
  local rpc = require("ratchet.rpc")
  local notes, got = {}, nil
  -- `cat` echoes every line: our request comes back as a request to us (served by the
  -- handler), whose response comes back as the response to our request.
  local conn = rpc.spawn({ "cat" }, {
    handlers = { ["echo/ping"] = function(params, respond) respond(nil, { pong = params.n }) end },
    on_notification = function(method, params) table.insert(notes, { method, params.k }) end,
  })
  conn:request("echo/ping", { n = 7 }, function(err, result) got = { err = err, result = result } end)
  wait_for("the echoed response", function() return got ~= nil end)
  check(got.err == nil and got.result.pong == 7, "response: " .. vim.inspect(got))
  -- Two messages split mid-line and joined in one chunk.
  conn:_feed('{"jsonrpc":"2.0","method":"a","params":{"k":1}}\n{"jsonrpc":"2.0","me')
  check(#notes == 1, "first notification not dispatched alone")
  conn:_feed('thod":"b","params":{"k":2}}\n\nnot json\n')
  check(#notes == 2 and notes[2][1] == "b" and notes[2][2] == 2, "split notification: " .. vim.inspect(notes))
  conn:request("nobody/answers", {}, function(err) got = { err = err } end)
  conn:stop()
  wait_for("the pending request to fail on exit", function() return got.err ~= nil end)
  check(got.err.message:find("exited", 1, true), "error on exit: " .. vim.inspect(got.err))
end }

tests[#tests + 1] = { "rpc: a request the agent withdraws ($/cancel_request) is answered -32800 at once (against `cat`)", function()
  local rpc = require("ratchet.rpc")
  local held, withdrawn, got, writes = nil, {}, nil, {}
  -- Our request comes back as the agent's; its handler waits, like a form the user has open.
  local conn = rpc.spawn({ "cat" }, {
    handlers = { ["ask/form"] = function(_, respond) held = respond end },
    on_withdrawn = function(method, params) table.insert(withdrawn, { method, params.message }) end,
  })
  local write = conn._write
  conn._write = function(self, msg)
    table.insert(writes, msg)
    write(self, msg)
  end
  local id = conn:request("ask/form", { message = "Approve plan p1?" }, function(err, result)
    got = { err = err, result = result }
  end)
  wait_for("the held request", function() return held ~= nil end)
  conn:notify("$/cancel_request", { requestId = id })
  wait_for("the withdrawn request's answer", function() return got ~= nil end)
  check(got.err and got.err.code == rpc.REQUEST_CANCELLED, "answer: " .. vim.inspect(got))
  check(#withdrawn == 1 and withdrawn[1][1] == "ask/form" and withdrawn[1][2] == "Approve plan p1?",
    "on_withdrawn: " .. vim.inspect(withdrawn))
  -- The user answers the still-open form late: nothing more is sent.
  local sent = #writes
  held(nil, { action = "accept" })
  check(#writes == sent, "a late answer was sent: " .. vim.inspect(writes[#writes]))
  -- A cancel for a request already answered, or unknown, changes nothing.
  conn:notify("$/cancel_request", { requestId = 999 })
  vim.wait(100)
  check(#withdrawn == 1, "an unknown request was withdrawn: " .. vim.inspect(withdrawn))
  conn:stop()
end }

tests[#tests + 1] = { "chat: streamed agent text lands in the chat buffer", function()
  vim.cmd("Ratchet say hello")
  wait_turns(1)
  check(session().stop_reasons[1] == "end_turn", "stop reason " .. tostring(session().stop_reasons[1]))
  local text = chat_text()
  check(text:find("## You\nsay hello", 1, true), "user prompt missing:\n" .. text)
  check(text:find("## ratchet\nHello from the mock.", 1, true), "agent text missing:\n" .. text)
  check(vim.bo[session().chat.buf].filetype == "markdown", "chat buffer is not markdown")
  check(vim.api.nvim_get_current_buf() == session().chat.buf, ":Ratchet did not focus the chat")
  wait_for("the session title", function() return session().chat.title ~= nil end)
  local bar = vim.wo[vim.fn.win_findbuf(session().chat.buf)[1]].winbar
  check(bar:find(session().chat.title, 1, true), "winbar without the title: " .. bar)
  wait_for("the usage", function() return session().chat.usage ~= nil end)
  bar = vim.wo[vim.fn.win_findbuf(session().chat.buf)[1]].winbar
  check(bar:find("tokens]", 1, true), "winbar without usage: " .. bar)
end }

tests[#tests + 1] = { "tool call: permission asked via vim.ui.select, allowed, file written, status completed", function()
  vim.cmd("Ratchet create out.txt")
  wait_turns(2)
  check(#permission_prompts == 1, "expected one permission prompt, got " .. #permission_prompts)
  check(read(workspace .. "/out.txt") == "created by the agent\n", "out.txt content wrong")
  local text = chat_text()
  check(text:find("- [x] **edit**", 1, true), "no completed edit tool line:\n" .. text)
  check(text:find("+created by the agent", 1, true), "no diff rendered:\n" .. text)
  check(text:find("Wrote out.txt.", 1, true), "final text missing:\n" .. text)
  local _, lines_for_call = text:gsub("`Write out.txt`", "")
  check(lines_for_call == 1, "tool call not updated in place (" .. lines_for_call .. " lines):\n" .. text)
end }

tests[#tests + 1] = { "edit: lands in the open modified buffer (unsaved text read), undo restores", function()
  local path = workspace .. "/notes.txt"
  local f = assert(io.open(path, "wb"))
  f:write("DISK\n")
  f:close()
  vim.cmd("edit " .. vim.fn.fnameescape(path))
  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "UNSAVED line" })
  check(vim.bo[buf].modified, "buffer should be modified")
  vim.cmd("Ratchet fix notes")
  wait_turns(3)
  check(session().stop_reasons[3] == "end_turn", "stop reason " .. tostring(session().stop_reasons[3]))
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  check(lines[1] == "EDITED line" and #lines == 1, "buffer after edit: " .. vim.inspect(lines))
  check(read(path) == "EDITED line\n", "disk after edit: " .. read(path))
  vim.api.nvim_buf_call(buf, function() vim.cmd("silent undo") end)
  lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  check(lines[1] == "UNSAVED line", "undo did not restore: " .. vim.inspect(lines))
end }

tests[#tests + 1] = { "plan and thoughts: the plan is a checklist rewritten in place, thoughts are quoted", function()
  vim.cmd("Ratchet make a plan")
  wait_turns(4)
  local text = chat_text()
  check(text:find("**Plan**\n- [x] Read the code\n- [~] Write the fix", 1, true), "plan not updated in place:\n" .. text)
  local _, count = text:gsub("%*%*Plan%*%*", "")
  check(count == 1, "plan rendered " .. count .. " times:\n" .. text)
  check(text:find("> _thinking:_ Weighing the plan.", 1, true), "thought missing:\n" .. text)
  local chat_win = vim.fn.win_findbuf(session().chat.buf)[1]
  local thought_line = vim.fn.match(vim.api.nvim_buf_get_lines(session().chat.buf, 0, -1, false), "^> _thinking:_") + 1
  check(vim.api.nvim_win_call(chat_win, function() return vim.fn.foldclosed(thought_line) end) ~= -1, "thought not folded")
  check(text:find("Plan made.", 1, true), "final text missing:\n" .. text)
  local _, plan_calls = text:gsub("`Update plan`", "")
  check(plan_calls == 2, "expected one line per update_plan call, got " .. plan_calls .. ":\n" .. text)
end }

tests[#tests + 1] = { "picture: the chat's screen (tool call, diff, plan) as text and as docs/nvim-chat.png", function()
  local chat = session().chat
  vim.api.nvim_set_current_win(vim.fn.win_findbuf(chat.buf)[1])
  -- A tab of its own (the window's options come along), no tab line, status line or ruler
  -- (they would show the temp path), stock highlighting as a default config has it.
  local saved = { showtabline = vim.o.showtabline, laststatus = vim.o.laststatus, ruler = vim.o.ruler }
  vim.cmd("tab split")
  vim.o.showtabline, vim.o.laststatus, vim.o.ruler = 0, 0, false
  -- The UI's size already, so attaching it does not resize (and rescroll) the window.
  vim.o.columns, vim.o.lines = 100, 34
  vim.cmd("syntax on")
  local lines = vim.api.nvim_buf_get_lines(chat.buf, 0, -1, false)
  local top = vim.fn.index(lines, "fix notes") -- its "## You" heading, 1-based
  local last = vim.fn.index(lines, "Plan made.") + 1
  check(top > 0 and last > top, "the conversation to show is not in the chat")
  vim.fn.winrestview({ topline = top, lnum = last, col = 0 })
  vim.cmd("echo ''")
  local ok, grabbed = pcall(screen.capture, 100, 34)
  vim.cmd("tabclose")
  vim.o.showtabline, vim.o.laststatus, vim.o.ruler = saved.showtabline, saved.laststatus, saved.ruler
  if not ok then error(grabbed, 0) end
  screen_text = screen.text(grabbed)
  for _, want in ipairs({ "- [x] **edit** `Edit notes.txt`", "  +EDITED line", "**Plan**", "- [x] Read the code",
    "- [~] Write the fix", "ratchet: say hello", "tokens]" }) do
    check(screen_text:find(want, 1, true), "not on the screen: " .. want .. "\n" .. screen_text)
  end
  local grid = vim.fn.tempname() .. ".json"
  local f = assert(io.open(grid, "wb"))
  f:write(vim.json.encode(screen.normalized(grabbed)))
  f:close()
  local env = os.getenv("RATCHET_TEST_PILLOW") and { PYTHONPATH = os.getenv("RATCHET_TEST_PILLOW") } or nil
  local python = os.getenv("RATCHET_TEST_PYTHON") or "python3"
  local checked = vim.system({ python, test_dir .. "/render_screen.py", UPDATE and "update" or "check", grid, PICTURE },
    { env = env, text = true }):wait()
  if checked.code == 0 and checked.stderr ~= "" then io.stdout:write("     " .. vim.trim(checked.stderr) .. "\n") end
  check(checked.code == 0, "render_screen.py: " .. vim.trim(checked.stderr .. checked.stdout))
end }

tests[#tests + 1] = { "cancel: :RatchetCancel ends a stalled turn with stopReason cancelled", function()
  vim.cmd("Ratchet take your time")
  wait_for("streamed text before the stall", function() return chat_text():find("Working on it", 1, true) ~= nil end)
  check(session().busy, "turn should be running")
  vim.cmd("RatchetCancel")
  wait_turns(5)
  check_snapshot()
  check(session().stop_reasons[5] == "cancelled", "stop reason " .. tostring(session().stop_reasons[5]))
  check(chat_text():find("turn ended: cancelled", 1, true), "no cancel notice:\n" .. chat_text())
end }

tests[#tests + 1] = { "permission rejected: the file is not written and the agent is told", function()
  permission_answer = "reject_once"
  vim.cmd("Ratchet create rejected.txt")
  wait_turns(6)
  check(session().stop_reasons[6] == "end_turn", "stop reason " .. tostring(session().stop_reasons[6]))
  check(io.open(workspace .. "/rejected.txt") == nil, "rejected.txt was written")
  check(chat_text():find("Understood, not writing it.", 1, true), "no final text:\n" .. chat_text())
end }

tests[#tests + 1] = { "cancel during a permission prompt: answered cancelled, nothing written, call marked", function()
  permission_answer = "hold"
  local asked = #permission_prompts
  vim.cmd("Ratchet create held.txt")
  wait_for("the permission prompt", function() return #permission_prompts > asked end)
  vim.cmd("RatchetCancel")
  wait_turns(7)
  check(session().stop_reasons[7] == "cancelled", "stop reason " .. tostring(session().stop_reasons[7]))
  check(io.open(workspace .. "/held.txt") == nil, "held.txt was written")
  check(next(session().open_permissions) == nil, "a permission request is still open")
  held_permission(nil) -- the picker closing late must not answer twice
  local text = chat_text()
  check(text:find("- [-] **edit** `Write held.txt`", 1, true) or text:find("- [!] **edit** `Write held.txt`", 1, true),
    "held call not marked cancelled/failed:\n" .. text)
  permission_answer = "allow_once"
end }

tests[#tests + 1] = { "elicitation: ask_human's form is answered through vim.ui.input and reaches the model", function()
  local asked = nil
  vim.ui.input = function(opts, on_confirm)
    asked = opts.prompt
    on_confirm("blue")
  end
  vim.cmd("Ratchet pick a colour")
  wait_turns(8)
  check(session().stop_reasons[8] == "end_turn", "stop reason " .. tostring(session().stop_reasons[8]))
  check(asked and asked:find("Which colour should the button be?", 1, true), "input prompt: " .. tostring(asked))
  local log = read(assert(os.getenv("RATCHET_TEST_REQUEST_LOG")))
  local tool_msg = nil
  for _, line in ipairs(vim.split(vim.trim(log), "\n", { plain = true })) do
    for _, m in ipairs(vim.json.decode(line).messages or {}) do
      if m.role == "tool" and m.tool_call_id == "call_ask" then tool_msg = m end
    end
  end
  check(tool_msg, "the model never got ask_human's result")
  check(vim.inspect(tool_msg.content):find("blue", 1, true), "answer not in the tool result: " .. vim.inspect(tool_msg))
  check(chat_text():find("Blue it is.", 1, true), "no final text:\n" .. chat_text())
end }

tests[#tests + 1] = { "terminal: the shell tool runs in a Neovim terminal buffer and its output reaches the model", function()
  vim.cmd("Ratchet run echo")
  wait_turns(9)
  check(session().stop_reasons[9] == "end_turn", "stop reason " .. tostring(session().stop_reasons[9]))
  local term_buf = vim.fn.bufnr("ratchet://terminal/nvim-term-1")
  check(term_buf ~= -1 and vim.bo[term_buf].buftype == "terminal", "no terminal buffer")
  wait_for("the output in the terminal buffer", function()
    return table.concat(vim.api.nvim_buf_get_lines(term_buf, 0, -1, false), "\n"):find("from-the-nvim-terminal", 1, true) ~= nil
  end)
  local log = read(assert(os.getenv("RATCHET_TEST_REQUEST_LOG")))
  local tool_msg = nil
  for _, line in ipairs(vim.split(vim.trim(log), "\n", { plain = true })) do
    for _, m in ipairs(vim.json.decode(line).messages or {}) do
      if m.role == "tool" and m.tool_call_id == "call_sh" then tool_msg = m end
    end
  end
  check(tool_msg and vim.inspect(tool_msg.content):find("from-the-nvim-terminal", 1, true),
    "the model did not get the output: " .. vim.inspect(tool_msg))
  check(next(session().terminals.by_id) == nil, "the agent did not release its terminal")
  check(chat_text():find("- [x] **execute**", 1, true), "no completed execute line:\n" .. chat_text())
end }

tests[#tests + 1] = { "plan approval form: rejected with feedback through vim.ui.select and vim.ui.input", function()
  vim.ui.input = function(_, on_confirm) on_confirm("not now") end
  vim.cmd("Ratchet plan a file")
  wait_turns(10)
  check(session().stop_reasons[10] == "end_turn", "stop reason " .. tostring(session().stop_reasons[10]))
  check(#elicitation_prompts == 2, "expected the decision and the steps to skip: " .. vim.inspect(elicitation_prompts))
  check(io.open(workspace .. "/one.txt") == nil, "the rejected plan ran")
  local log = read(assert(os.getenv("RATCHET_TEST_REQUEST_LOG")))
  check(log:find("not now", 1, true), "the feedback did not reach the model")
  check(chat_text():find("OK, no plan then.", 1, true), "no final text:\n" .. chat_text())
end }

tests[#tests + 1] = { "fleet: an approved plan's workers show as their own lines, with live status", function()
  plan_decision = "approve"
  vim.cmd("Ratchet make two files")
  wait_turns(11)
  check(session().stop_reasons[11] == "end_turn", "stop reason " .. tostring(session().stop_reasons[11]))
  check(read(workspace .. "/one.txt") == "s1\n" and read(workspace .. "/two.txt") == "s2\n", "workers did not write")
  local text = chat_text()
  local turn = text:sub((text:find("make two files", 1, true)))
  check(turn:find("**Plan**\n- [x] s1: Write one.txt", 1, true) and turn:find("\n- [x] s2: Write two.txt", 1, true),
    "plan not completed in this turn's own block:\n" .. turn)
  for _, step in ipairs({ "s1: Write one.txt", "s2: Write two.txt" }) do
    local _, n = turn:gsub(vim.pesc("- [x] **worker** `" .. step .. "` · done"), "")
    check(n == 1, "expected one completed line for worker " .. step .. ", got " .. n .. ":\n" .. turn)
  end
  check(turn:find("The fleet is done.", 1, true), "no final text:\n" .. turn)
end }

tests[#tests + 1] = { "team: /team's members show as their own lines with name, role and live status", function()
  -- Two members, told apart by the mock through their role prompts (script.json's "for").
  vim.fn.mkdir(workspace .. "/.ratchet/teams", "p")
  local f = assert(io.open(workspace .. "/.ratchet/teams/pair.yaml", "wb"))
  f:write("name: pair\nagents:\n"
    .. "  - name: alpha\n    role: lead\n    system_prompt: \"ALPHA-ROLE: you lead\"\n"
    .. "  - name: beta\n    role: follower\n    system_prompt: \"BETA-ROLE: you follow\"\n"
    .. "timeout: 60s\n")
  f:close()
  -- Every head line each member's call had, as it was rendered.
  local chat = session().chat
  local shown = {}
  chat.tool_call = function(self, update, is_new)
    getmetatable(self).tool_call(self, update, is_new)
    local slot = self.tools[update.toolCallId]
    shown[update.toolCallId] = shown[update.toolCallId] or {}
    table.insert(shown[update.toolCallId], (require("ratchet.render").tool_call(slot.call, self.cwd))[1])
  end
  vim.cmd("Ratchet /team pair Pair up")
  local ok, err = pcall(wait_turns, 12)
  chat.tool_call = nil
  if not ok then error(err, 0) end
  check(session().stop_reasons[12] == "end_turn", "stop reason " .. tostring(session().stop_reasons[12]))
  local text = chat_text()
  local turn = text:sub((text:find("/team pair Pair up", 1, true)))
  check(turn:find("Team t1 (pair) completed.", 1, true), "no team summary:\n" .. turn)
  for _, m in ipairs({ { "alpha", "lead" }, { "beta", "follower" } }) do
    local head = ("**%s** (%s) · team t1 · "):format(m[1], m[2])
    local _, n = turn:gsub(vim.pesc("- [x] " .. head .. "done"), "")
    check(n == 1, "expected one done line for " .. m[1] .. ", got " .. n .. ":\n" .. turn)
    local history = shown["team-t1-" .. m[1]] or {}
    local working = vim.tbl_filter(function(l) return l:find("[~] " .. head .. "working", 1, true) ~= nil end, history)
    check(#working > 0, m[1] .. " never showed as working: " .. vim.inspect(history))
    local live = vim.tbl_filter(function(l) return l:find("working — → Blackboard", 1, true) ~= nil end, working)
    check(#live > 0, m[1] .. "'s line never showed its live output: " .. vim.inspect(history))
  end
end }

tests[#tests + 1] = { "lists: :RatchetPlans, :RatchetJobs and :RatchetQuestions show the CLI's --json records", function()
  for _, what in ipairs({ "plans", "jobs", "questions" }) do
    local shown = nil
    ratchet.list(what, function(buf) shown = buf end)
    wait_for(what .. " listing", function() return shown ~= nil end)
    local lines = vim.api.nvim_buf_get_lines(shown, 0, -1, false)
    check(lines[1]:find("^# ratchet " .. what .. " %(%d+%)$"), what .. " heading: " .. vim.inspect(lines))
    if what == "plans" then
      local listing = table.concat(lines, "\n")
      check(lines[1] == "# ratchet plans (2)", "the proposed plans are not listed: " .. listing)
      check(listing:find("**p1**  Make a file", 1, true) and listing:find("**p2**  Make two files", 1, true),
        "plan lines: " .. listing)
    end
    io.stdout:write("     " .. table.concat(lines, " | ") .. "\n")
  end
end }

tests[#tests + 1] = { "mode: :RatchetMode offers the agent's modes and switches with session/set_config_option", function()
  local mode = session():config_option("mode")
  check(mode and #mode.options > 1, "no mode config option: " .. vim.inspect(session().config))
  current_mode = mode.currentValue
  vim.cmd("RatchetMode")
  wait_for("mode change", function()
    local m = session():config_option("mode")
    return m and m.currentValue ~= current_mode
  end)
end }

tests[#tests + 1] = { "model: :RatchetModel offers the agent's model option and sets the picked value", function()
  local opt = session():config_option("model")
  check(opt, "no model config option: " .. vim.inspect(session().config))
  local offered = nil
  local original_select = vim.ui.select
  vim.ui.select = function(items, opts, on_choice)
    offered = { items = items, prompt = opts.prompt }
    on_choice(items[1])
  end
  vim.cmd("RatchetModel")
  vim.ui.select = original_select
  check(offered and #offered.items >= 1, "no model offered")
  check(offered.prompt:find(tostring(opt.currentValue), 1, true), "prompt without the current model: " .. offered.prompt)
  wait_for("the set_config_option answer", function() return next(session().conn.pending) == nil end)
  check(session():config_option("model").currentValue == offered.items[1].value, "model not set")
end }

tests[#tests + 1] = { "health: :checkhealth ratchet reports the binary, its version, the provider and the daemon", function()
  vim.cmd("silent checkhealth ratchet")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  check(text:find("binary: ", 1, true), "no binary line:\n" .. text)
  check(text:find("version: ratchet", 1, true), "no version line:\n" .. text)
  check(text:find("daemon: ", 1, true), "no daemon line:\n" .. text)
  check(text:find("provider: openai (RATCHET_PROVIDER), model mock-model", 1, true), "no provider line:\n" .. text)
  check(text:find("uses model ", 1, true), "no session model line:\n" .. text)
  vim.cmd("bwipeout")
end }

for _, t in ipairs(dofile(test_dir .. "/snippets_test.lua").tests(plugin_dir .. "/README.md",
  assert(os.getenv("RATCHET_TEST_BIN")), check, wait_for)) do
  tests[#tests + 1] = t
end

tests[#tests + 1] = { "sessions: a new process lists and loads the past session, history replays", function()
  local old = session()
  local old_id = old.session_id
  old:stop()
  wait_for("old process exit", function() return old.exited ~= nil end)
  vim.api.nvim_buf_delete(old.chat.buf, { force = true })
  pick_session_id = old_id
  vim.cmd("RatchetSessions")
  wait_for("session loaded", function() return session() ~= old and session().loaded ~= nil end)
  check(session().loaded == old_id, "loaded " .. tostring(session().loaded) .. ", wanted " .. tostring(old_id))
  local text = chat_text()
  check(text:find("say hello", 1, true), "user message not replayed:\n" .. text)
  check(text:find("Hello from the mock.", 1, true), "agent message not replayed:\n" .. text)
end }

for _, t in ipairs(tests) do
  local ok, err = pcall(t[2])
  if ok and session() and #session().errors > 0 then
    ok, err = false, "plugin errors: " .. table.concat(session().errors, "; ")
  end
  if ok then
    passed = passed + 1
    io.stdout:write("ok   - " .. t[1] .. "\n")
  else
    failures = failures + 1
    io.stdout:write("FAIL - " .. t[1] .. "\n    " .. tostring(err) .. "\n")
    local s = session()
    if s and #s.stderr > 0 then io.stdout:write("    ratchet stderr: " .. table.concat(s.stderr):sub(-2000) .. "\n") end
  end
end
io.stdout:write(("%d passed, %d failed\n"):format(passed, failures))
ratchet.stop_all()
os.exit(failures == 0 and 0 or 1)
