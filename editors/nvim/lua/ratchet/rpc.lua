--- JSON-RPC 2.0 over newline-delimited JSON on a child's stdio (the ACP transport).
---
--- One `Connection` owns one `ratchet acp` process. Requests we send are correlated with
--- their responses by id; requests the agent sends us are dispatched to `handlers[method]`
--- (which answer through a `respond` callback, so they may wait for the user); notifications
--- go to `on_notification`. Callbacks run on the main loop (vim.schedule), so they may touch
--- buffers freely.
local M = {}

local Connection = {}
Connection.__index = Connection

--- JSON-RPC error codes we send back.
M.METHOD_NOT_FOUND = -32601
M.INTERNAL_ERROR = -32603
M.RESOURCE_NOT_FOUND = -32002
M.REQUEST_CANCELLED = -32800

--- Spawns `cmd` (a list) and returns a Connection.
--- opts: { env?, cwd?, handlers = {method = fn(params, respond)}, on_notification = fn(method, params),
---         on_exit = fn(code), on_stderr = fn(text), on_error = fn(method, err) (a handler raised),
---         on_withdrawn = fn(method, params) (the agent cancelled a request still waiting for us) }
---
--- A `$/cancel_request` for a request still waiting (say, a form the user has open) answers
--- it at once with -32800, as the spec requires; the handler's own later answer is dropped.
function M.spawn(cmd, opts)
  local self = setmetatable({
    next_id = 1,
    pending = {}, -- id -> callback(err, result)
    buffer = "",
    handlers = opts.handlers or {},
    on_notification = opts.on_notification or function() end,
    on_exit = opts.on_exit or function() end,
    on_error = opts.on_error or function() end,
    on_withdrawn = opts.on_withdrawn or function() end,
    waiting = {}, -- id (as JSON text) of each request the agent sent us -> {method, params, respond}
    closed = false,
  }, Connection)
  local ok, proc = pcall(vim.system, cmd, {
    cwd = opts.cwd,
    env = opts.env,
    stdin = true,
    stdout = function(_, data)
      if data then
        vim.schedule(function() self:_feed(data) end)
      end
    end,
    stderr = function(_, data)
      if data and opts.on_stderr then
        vim.schedule(function() opts.on_stderr(data) end)
      end
    end,
  }, function(out)
    vim.schedule(function() self:_closed(out.code) end)
  end)
  if not ok then
    error("ratchet: could not start " .. table.concat(cmd, " ") .. ": " .. tostring(proc)
      .. " (install ratchet or set `cmd` in require('ratchet').setup{})")
  end
  self.proc = proc
  return self
end

function Connection:_write(msg)
  if self.closed then return end
  self.proc:write(vim.json.encode(msg) .. "\n")
end

--- Splits the byte stream into lines; each complete line is one JSON-RPC message.
function Connection:_feed(data)
  self.buffer = self.buffer .. data
  while true do
    local nl = self.buffer:find("\n", 1, true)
    if not nl then break end
    local line = self.buffer:sub(1, nl - 1)
    self.buffer = self.buffer:sub(nl + 1)
    if line:match("%S") then
      local ok, msg = pcall(vim.json.decode, line, { luanil = { object = true, array = true } })
      if ok and type(msg) == "table" then
        self:_dispatch(msg)
      end
    end
  end
end

function Connection:_dispatch(msg)
  if msg.method and msg.id ~= nil then
    local handler = self.handlers[msg.method]
    local id = msg.id
    if not handler then
      self:_write({ jsonrpc = "2.0", id = id, error = { code = M.METHOD_NOT_FOUND, message = "Method not found: " .. msg.method } })
      return
    end
    local answered = false
    local key = vim.json.encode(id)
    local function respond(err, result)
      if answered then return end
      answered = true
      self.waiting[key] = nil
      if err then
        self:_write({ jsonrpc = "2.0", id = id, error = err })
      else
        self:_write({ jsonrpc = "2.0", id = id, result = result == nil and vim.NIL or result })
      end
    end
    self.waiting[key] = { method = msg.method, params = msg.params or {}, respond = respond }
    local ok, perr = pcall(handler, msg.params or {}, respond)
    if not ok then
      respond({ code = M.INTERNAL_ERROR, message = tostring(perr) })
    end
  elseif msg.method == "$/cancel_request" then
    local key = vim.json.encode((msg.params or {}).requestId)
    local waiting = self.waiting[key]
    if waiting then
      waiting.respond({ code = M.REQUEST_CANCELLED, message = "Request cancelled" })
      local ok, err = pcall(self.on_withdrawn, waiting.method, waiting.params)
      if not ok then self.on_error("$/cancel_request", err) end
    end
  elseif msg.method then
    local ok, err = pcall(self.on_notification, msg.method, msg.params or {})
    if not ok then self.on_error(msg.method, err) end
  elseif msg.id ~= nil then
    local cb = self.pending[msg.id]
    self.pending[msg.id] = nil
    if cb then
      local ok, err = pcall(cb, msg.error, msg.result)
      if not ok then self.on_error("response " .. tostring(msg.id), err) end
    end
  end
end

function Connection:_closed(code)
  if self.closed then return end
  self.closed = true
  for id, cb in pairs(self.pending) do
    self.pending[id] = nil
    cb({ code = -32099, message = "ratchet acp exited (code " .. tostring(code) .. ")" }, nil)
  end
  self.on_exit(code)
end

--- Sends a request; `callback(err, result)` runs when the response arrives.
function Connection:request(method, params, callback)
  local id = self.next_id
  self.next_id = id + 1
  self.pending[id] = callback or function() end
  self:_write({ jsonrpc = "2.0", id = id, method = method, params = params })
  return id
end

function Connection:notify(method, params)
  self:_write({ jsonrpc = "2.0", method = method, params = params })
end

function Connection:stop()
  if not self.closed and self.proc then
    pcall(function() self.proc:write(nil) end)
    pcall(function() self.proc:kill(15) end)
  end
end

return M
