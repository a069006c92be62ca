--- One ACP session for one project (cwd): the `ratchet acp` connection, the handshake, the
--- prompt turn, and the client-side requests the agent sends (permissions, forms, fs, terminals).
local rpc = require("ratchet.rpc")
local chat_mod = require("ratchet.chat")
local fs = require("ratchet.fs")
local elicitation = require("ratchet.elicitation")
local terminal = require("ratchet.terminal")

local M = {}

local PROTOCOL_VERSION = 1

local Session = {}
Session.__index = Session

--- opts: { cmd = {...}, env = {...}|nil, cwd = string }
function M.start(opts)
  local self = setmetatable({
    cwd = opts.cwd,
    chat = chat_mod.new(opts.cwd),
    session_id = nil,
    ready = false,
    busy = false,
    queue = {}, -- actions waiting for the handshake
    open_permissions = {}, -- respond callbacks of permission requests still open
    agent = nil, -- initialize result
    stop_reasons = {}, -- stop reason of each finished turn, in order
    stderr = {},
    errors = {}, -- errors raised while handling the agent's messages (a plugin bug)
    terminals = terminal.new(),
  }, Session)
  local cmd = vim.list_extend(vim.deepcopy(opts.cmd), { "acp" })
  self.conn = rpc.spawn(cmd, {
    cwd = opts.cwd,
    env = opts.env,
    handlers = vim.tbl_extend("error", self.terminals:handlers(), {
      ["session/request_permission"] = function(p, respond) self:_permission(p, respond) end,
      ["elicitation/create"] = elicitation.handle,
      ["fs/read_text_file"] = function(p, respond)
        local content, err = fs.read(p)
        if err then respond(err) else respond(nil, { content = content }) end
      end,
      ["fs/write_text_file"] = function(p, respond)
        local ok, err = fs.write(p)
        if ok then respond(nil, vim.empty_dict()) else respond(err) end
      end,
    }),
    on_notification = function(method, params)
      if vim.env.RATCHET_NVIM_TRACE then
        local f = io.open(vim.env.RATCHET_NVIM_TRACE, "a")
        if f then
          f:write(vim.json.encode({ method = method, params = params }) .. "\n")
          f:close()
        end
      end
      if method ~= "session/update" or not params.update then return end
      -- Only this session's updates (and, during a load, the loaded one's replay).
      if params.sessionId ~= self.session_id and params.sessionId ~= self.loading_id then return end
      if params.update.sessionUpdate == "config_option_update" then self.config = params.update.configOptions end
      self.chat:render(params.update)
    end,
    on_withdrawn = function(method, params)
      local what = method == "session/request_permission" and "permission question" or "question"
      local title = params.message or (params.toolCall and params.toolCall.title)
      self.chat:notice(("ratchet withdrew its %s%s (answered elsewhere); an answer given now is ignored")
        :format(what, title and (": " .. title) or ""))
    end,
    on_stderr = function(text) table.insert(self.stderr, text) end,
    on_error = function(method, err)
      table.insert(self.errors, method .. ": " .. tostring(err))
      vim.notify("ratchet.nvim: error handling " .. method .. ": " .. tostring(err), vim.log.levels.ERROR)
    end,
    on_exit = function(code)
      self.ready, self.busy = false, false
      self.exited = code
      self.chat:notice(("ratchet acp exited with code %s; run :Ratchet to restart"):format(tostring(code)))
    end,
  })
  self:_handshake()
  return self
end

function Session:_fail(what, err)
  self.last_error = err
  self.chat:notice(("%s failed: %s"):format(what, err and err.message or vim.inspect(err)))
end

function Session:_handshake()
  self.conn:request("initialize", {
    protocolVersion = PROTOCOL_VERSION,
    clientCapabilities = {
      fs = { readTextFile = true, writeTextFile = true },
      terminal = true, -- commands run in ratchet://terminal/<id> buffers (terminal.lua)
      elicitation = { form = vim.empty_dict() }, -- forms via vim.ui.select / vim.ui.input; no url mode
    },
    clientInfo = { name = "ratchet.nvim", version = "0.1.0" },
  }, function(err, result)
    if err then return self:_fail("initialize", err) end
    self.agent = result
    self.conn:request("session/new", { cwd = self.cwd, mcpServers = {} }, function(err2, res2)
      if err2 then return self:_fail("session/new", err2) end
      self:_session_ready(res2.sessionId, res2)
    end)
  end)
end

function Session:_session_ready(id, result)
  self.session_id = id
  self.config = result and result.configOptions
  self.modes = result and result.modes
  self.ready = true
  local queued = self.queue
  self.queue = {}
  for _, action in ipairs(queued) do action() end
end

--- Runs `action` now if the session is ready, else after the handshake.
function Session:_when_ready(action)
  if self.ready then action() else table.insert(self.queue, action) end
end

function Session:prompt(text)
  self:_when_ready(function()
    if self.busy then
      vim.notify("ratchet: a turn is running; :RatchetCancel first", vim.log.levels.WARN)
      return
    end
    self.busy = true
    self.chat:user_text(text)
    self.conn:request("session/prompt", {
      sessionId = self.session_id,
      prompt = { { type = "text", text = text } },
    }, function(err, result)
      self.busy = false
      if err then return self:_fail("session/prompt", err) end
      local reason = result and result.stopReason or "unknown"
      table.insert(self.stop_reasons, reason)
      if reason == "cancelled" then self.chat:cancel_open_tools() end
      if reason ~= "end_turn" then self.chat:notice("turn ended: " .. reason) end
    end)
  end)
end

--- Cancels the running turn; open permission prompts are answered `cancelled` (§13.1).
function Session:cancel()
  if not self.session_id then return end
  for _, respond in pairs(self.open_permissions) do
    respond(nil, { outcome = { outcome = "cancelled" } })
  end
  self.open_permissions = {}
  self.conn:notify("session/cancel", { sessionId = self.session_id })
end

function Session:_permission(params, respond)
  local key = {}
  self.open_permissions[key] = respond
  local call = params.toolCall or {}
  local known = call.toolCallId and self.chat.tools[call.toolCallId]
  local title = call.title or (known and known.call.title) or call.toolCallId or "tool call"
  vim.ui.select(params.options or {}, {
    prompt = "ratchet wants to run: " .. title,
    format_item = function(o) return ("%s (%s)"):format(o.name, o.kind) end,
    kind = "ratchet_permission",
  }, function(choice)
    if not self.open_permissions[key] then return end
    self.open_permissions[key] = nil
    if choice then
      respond(nil, { outcome = { outcome = "selected", optionId = choice.optionId } })
    else
      respond(nil, { outcome = { outcome = "cancelled" } })
    end
  end)
end

--- Whether the agent advertised `loadSession` ("load") or `sessionCapabilities[what]`.
local function capable(self, what)
  local caps = self.agent and self.agent.agentCapabilities or {}
  if what == "load" then return caps.loadSession == true end
  return (caps.sessionCapabilities or {})[what] ~= nil
end

--- `session/list` for this cwd, then `session/load` of the picked one (history replays).
function Session:pick_session()
  self:_when_ready(function()
    if not capable(self, "list") then
      return vim.notify("ratchet: this agent cannot list sessions (no sessionCapabilities.list)", vim.log.levels.WARN)
    end
    self.conn:request("session/list", { cwd = self.cwd }, function(err, result)
      if err then return self:_fail("session/list", err) end
      local sessions = result.sessions or {}
      if #sessions == 0 then return vim.notify("ratchet: no past sessions for " .. self.cwd) end
      vim.ui.select(sessions, {
        prompt = "Load ratchet session",
        format_item = function(s) return (s.title or s.sessionId) .. (s.updatedAt and ("  " .. s.updatedAt) or "") end,
        kind = "ratchet_session",
      }, function(choice)
        if choice then self:load(choice.sessionId) end
      end)
    end)
  end)
end

function Session:load(session_id)
  self:_when_ready(function()
    if not capable(self, "load") then
      return vim.notify("ratchet: this agent cannot load sessions (no loadSession)", vim.log.levels.WARN)
    end
    self.ready = false
    self.loading_id = session_id
    self.chat:notice("loading session " .. session_id)
    self.conn:request("session/load", { sessionId = session_id, cwd = self.cwd, mcpServers = {} }, function(err, result)
      self.loading_id = nil
      if err then
        self.ready = true
        return self:_fail("session/load", err)
      end
      self.loaded = session_id
      self:_session_ready(session_id, result)
    end)
  end)
end

--- The config option of `category` ("mode", "model", ...), if the agent offers one.
function Session:config_option(category)
  for _, opt in ipairs(self.config or {}) do
    if opt.category == category or opt.id == category then return opt end
  end
  return nil
end

--- Flattens a select option's (possibly grouped) values.
local function option_values(opt)
  local out = {}
  for _, v in ipairs(opt.options or {}) do
    if v.options then
      for _, inner in ipairs(v.options) do
        out[#out + 1] = { value = inner.value, name = (v.name or v.group) .. " / " .. (inner.name or inner.value) }
      end
    else
      out[#out + 1] = v
    end
  end
  return out
end

--- `session/set_config_option`; the agent answers with the complete new list.
function Session:set_config(config_id, value, on_done)
  self.conn:request("session/set_config_option", { sessionId = self.session_id, configId = config_id, value = value },
    function(err, result)
      if err then return self:_fail("session/set_config_option", err) end
      self.config = result.configOptions or self.config
      if on_done then on_done() end
    end)
end

--- Picks a value of the `category` config option with vim.ui.select (or sets `value` directly).
function Session:pick_config(category, value)
  self:_when_ready(function()
    local opt = self:config_option(category)
    if not opt then return vim.notify("ratchet: the agent offers no " .. category .. " option", vim.log.levels.WARN) end
    if value and value ~= "" then return self:set_config(opt.id, value) end
    vim.ui.select(option_values(opt), {
      prompt = ("%s (now %s)"):format(opt.name, tostring(opt.currentValue)),
      format_item = function(v) return (v.value == opt.currentValue and "* " or "  ") .. (v.name or v.value) end,
      kind = "ratchet_config",
    }, function(choice)
      if choice then self:set_config(opt.id, choice.value) end
    end)
  end)
end

function Session:stop()
  self.terminals:kill_all()
  self.conn:stop()
end

return M
