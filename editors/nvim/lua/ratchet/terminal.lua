--- The client side of `terminal/*`: the agent's shell commands run here, each in a terminal
--- buffer (`ratchet://terminal/<id>`, fed through `nvim_open_term`) so you can watch them,
--- while their output is kept (bounded by `outputByteLimit`) for `terminal/output`.
local M = {}

local Terminals = {}
Terminals.__index = Terminals

--- One terminal table per session.
function M.new()
  return setmetatable({ by_id = {}, next_id = 1 }, Terminals)
end

--- Drops bytes from the front until `s` fits in `limit`, never starting mid-character.
local function keep_tail(s, limit)
  if not limit or #s <= limit then return s, false end
  local start = #s - limit + 1
  while start <= #s do
    local b = s:byte(start)
    if b < 0x80 or b >= 0xC0 then break end
    start = start + 1
  end
  return s:sub(start), true
end

local function missing(id)
  return { code = -32602, message = "unknown terminal " .. tostring(id) .. " (released?)" }
end

function Terminals:create(params, respond)
  if type(params.command) ~= "string" then
    return respond({ code = -32602, message = "terminal/create needs a string `command`" })
  end
  local id = "nvim-term-" .. self.next_id
  self.next_id = self.next_id + 1
  local env = nil
  if params.env and #params.env > 0 then
    env = {}
    for _, kv in ipairs(params.env) do env[kv.name] = kv.value end
  end
  local buf = vim.api.nvim_create_buf(true, true)
  pcall(vim.api.nvim_buf_set_name, buf, "ratchet://terminal/" .. id)
  local term = {
    id = id, buf = buf, chan = vim.api.nvim_open_term(buf, {}), output = "", truncated = false,
    limit = params.outputByteLimit, exit = nil, waiters = {},
  }
  local function on_output(_, data)
    if not data then return end
    vim.schedule(function()
      local kept, cut = keep_tail(term.output .. data, term.limit)
      term.output, term.truncated = kept, term.truncated or cut
      if vim.api.nvim_buf_is_valid(buf) then pcall(vim.api.nvim_chan_send, term.chan, (data:gsub("\r?\n", "\r\n"))) end
    end)
  end
  local cmd = vim.list_extend({ params.command }, params.args or {})
  local ok, proc = pcall(vim.system, cmd, { cwd = params.cwd, env = env, stdout = on_output, stderr = on_output },
    function(out)
      vim.schedule(function()
        term.exit = { exitCode = out.signal == 0 and out.code or vim.NIL, signal = out.signal ~= 0 and tostring(out.signal) or vim.NIL }
        if vim.api.nvim_buf_is_valid(buf) then
          pcall(vim.api.nvim_chan_send, term.chan, ("\r\n[exit %s]\r\n"):format(tostring(out.code)))
        end
        for _, waiter in ipairs(term.waiters) do waiter(nil, term.exit) end
        term.waiters = {}
      end)
    end)
  if not ok then
    pcall(vim.api.nvim_buf_delete, buf, { force = true })
    return respond({ code = -32603, message = "could not start " .. params.command .. ": " .. tostring(proc) })
  end
  term.proc = proc
  self.by_id[id] = term
  respond(nil, { terminalId = id })
end

function Terminals:output(params, respond)
  local term = self.by_id[params.terminalId]
  if not term then return respond(missing(params.terminalId)) end
  respond(nil, { output = term.output, truncated = term.truncated, exitStatus = term.exit })
end

function Terminals:wait_for_exit(params, respond)
  local term = self.by_id[params.terminalId]
  if not term then return respond(missing(params.terminalId)) end
  if term.exit then return respond(nil, term.exit) end
  table.insert(term.waiters, respond)
end

function Terminals:kill(params, respond)
  local term = self.by_id[params.terminalId]
  if not term then return respond(missing(params.terminalId)) end
  if not term.exit then pcall(function() term.proc:kill(15) end) end
  respond(nil, vim.empty_dict())
end

--- Kills the command if it still runs and forgets the id; the buffer stays for reading.
function Terminals:release(params, respond)
  local term = self.by_id[params.terminalId]
  if not term then return respond(missing(params.terminalId)) end
  if not term.exit then pcall(function() term.proc:kill(15) end) end
  self.by_id[params.terminalId] = nil
  respond(nil, vim.empty_dict())
end

function Terminals:kill_all()
  for _, term in pairs(self.by_id) do
    if not term.exit then pcall(function() term.proc:kill(15) end) end
  end
end

--- The rpc handlers for a session's terminals.
function Terminals:handlers()
  return {
    ["terminal/create"] = function(p, r) self:create(p, r) end,
    ["terminal/output"] = function(p, r) self:output(p, r) end,
    ["terminal/wait_for_exit"] = function(p, r) self:wait_for_exit(p, r) end,
    ["terminal/kill"] = function(p, r) self:kill(p, r) end,
    ["terminal/release"] = function(p, r) self:release(p, r) end,
  }
end

return M
