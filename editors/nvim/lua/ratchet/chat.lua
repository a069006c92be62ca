--- The chat buffer: a markdown scratch buffer that renders one session's `session/update`s.
---
--- Text streams in at the end of the buffer. Tool calls and the plan are blocks whose position
--- is tracked with extmarks, so `tool_call_update`s and new plans rewrite them in place even
--- after more text was appended below them.
local M = {}

local ns = vim.api.nvim_create_namespace("ratchet_chat")

local hl_ns = vim.api.nvim_create_namespace("ratchet_chat_highlights")
local render = require("ratchet.render")
render.define_highlights()

local Chat = {}
Chat.__index = Chat

--- Creates the chat buffer for `cwd` (or reuses the one already named for it).
function M.new(cwd)
  local name = "ratchet://chat/" .. cwd
  local buf = vim.fn.bufnr(name)
  if buf == -1 or not vim.api.nvim_buf_is_valid(buf) then
    buf = vim.api.nvim_create_buf(true, true)
    vim.api.nvim_buf_set_name(buf, name)
  end
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].swapfile = false
  vim.bo[buf].filetype = "markdown"
  local self = setmetatable({
    buf = buf,
    cwd = cwd,
    section = nil, -- "user" | "agent" | "thought" | "tool" | "plan"
    tools = {}, -- toolCallId -> { mark, lines, call }
    plan_block = nil, -- { mark, count } of the rendered plan
    title = nil,
    usage = nil,
  }, Chat)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "# ratchet — " .. cwd })
  return self
end

function Chat:_last_line()
  return vim.api.nvim_buf_line_count(self.buf) - 1
end

--- Appends whole lines at the end.
function Chat:_append_lines(lines)
  vim.api.nvim_buf_set_lines(self.buf, -1, -1, false, lines)
  self:_follow()
end

--- Appends streamed text to the last line, splitting on newlines.
function Chat:_append_text(text, prefix)
  prefix = prefix or ""
  local parts = vim.split(text, "\n", { plain = true })
  local last = self:_last_line()
  local cur = vim.api.nvim_buf_get_lines(self.buf, last, last + 1, false)[1] or ""
  parts[1] = cur .. parts[1]
  for i = 2, #parts do
    parts[i] = prefix .. parts[i]
  end
  vim.api.nvim_buf_set_lines(self.buf, last, last + 1, false, parts)
  self:_follow()
end

--- Keeps windows showing the chat scrolled to the end.
function Chat:_follow()
  local last = vim.api.nvim_buf_line_count(self.buf)
  for _, win in ipairs(vim.fn.win_findbuf(self.buf)) do
    pcall(vim.api.nvim_win_set_cursor, win, { last, 0 })
  end
end

--- Starts a new section (a heading or a blank line) when the kind of content changes.
function Chat:_enter(section)
  if self.section == section then return end
  self.section = section
  if section == "user" then
    self:_append_lines({ "", "## You", "" })
  elseif section == "agent" then
    self:_append_lines({ "", "## ratchet", "" })
  elseif section == "thought" then
    self:_append_lines({ "", "> _thinking:_ " })
  else
    self:_append_lines({ "" })
  end
end

function Chat:user_text(text)
  if self.section ~= "user" then self.plan_block = nil end -- a new turn's plan gets its own block
  self:_enter("user")
  self:_append_text(text)
end

local function block_text(content)
  if type(content) ~= "table" then return "" end
  if content.type == "text" then return content.text or "" end
  if content.type == "resource_link" then return "[" .. (content.name or content.uri or "") .. "](" .. (content.uri or "") .. ")" end
  if content.type == "resource" and content.resource then return content.resource.text or content.resource.uri or "" end
  return "<" .. tostring(content.type) .. ">"
end

--- Replaces a tracked block (tool call or plan) in place, or appends it when new, and
--- highlights it (`hls` from render.lua).
function Chat:_put_block(slot, lines, hls)
  local start = nil
  if slot.mark then
    local pos = vim.api.nvim_buf_get_extmark_by_id(self.buf, ns, slot.mark, {})
    if pos and pos[1] then
      -- Replace the block's text but not its final line break: deleting whole lines would
      -- drag the next block's mark (at the start of the following line) into this block.
      start = pos[1]
      local last = start + slot.count - 1
      local last_len = #(vim.api.nvim_buf_get_lines(self.buf, last, last + 1, false)[1] or "")
      vim.api.nvim_buf_clear_namespace(self.buf, hl_ns, start, last + 1)
      vim.api.nvim_buf_set_text(self.buf, start, 0, last, last_len, lines)
      vim.api.nvim_buf_set_extmark(self.buf, ns, start, 0, { id = slot.mark, right_gravity = false })
    end
  end
  if not start then
    start = vim.api.nvim_buf_line_count(self.buf)
    self:_append_lines(lines)
    slot.mark = vim.api.nvim_buf_set_extmark(self.buf, ns, start, 0, { right_gravity = false })
  end
  slot.count = #lines
  for _, h in ipairs(hls or {}) do
    local row = start + h[1]
    local end_col = h[3] >= 0 and h[3] or #lines[h[1] + 1]
    pcall(vim.api.nvim_buf_set_extmark, self.buf, hl_ns, row, h[2], { end_col = end_col, hl_group = h[4] })
  end
end

function Chat:tool_call(update, is_new)
  local slot = self.tools[update.toolCallId]
  if not slot then
    slot = { call = {} }
    self.tools[update.toolCallId] = slot
    self:_enter("tool")
  end
  for k, v in pairs(update) do
    if k ~= "sessionUpdate" then slot.call[k] = v end
  end
  self:_put_block(slot, render.tool_call(slot.call, self.cwd))
  if is_new then self.section = "tool" end
end

--- Marks every unfinished tool call as cancelled (ACP v1 has no such status on the wire).
function Chat:cancel_open_tools()
  for _, slot in pairs(self.tools) do
    local s = slot.call.status
    if s == nil or s == "pending" or s == "in_progress" then
      slot.call.status = "cancelled"
      self:_put_block(slot, render.tool_call(slot.call, self.cwd))
    end
  end
end

function Chat:plan(entries)
  local lines, hls = render.plan(entries)
  if not self.plan_block then
    self.plan_block = {}
    self:_enter("plan")
  end
  self:_put_block(self.plan_block, lines, hls)
end

function Chat:notice(text)
  self.section = nil
  self:_append_lines({ "", "_" .. text .. "_" })
end

--- The winbar shows the session title and the context usage.
function Chat:_winbar()
  local bar = "ratchet"
  if self.title then bar = bar .. ": " .. self.title:gsub("%%", "%%%%") end
  if self.usage then bar = bar .. ("  [%d/%d tokens]"):format(self.usage.used or 0, self.usage.size or 0) end
  for _, win in ipairs(vim.fn.win_findbuf(self.buf)) do
    vim.wo[win].winbar = bar
  end
  self.winbar = bar
end

--- Renders one `session/update` notification's `update`.
function Chat:render(update)
  local kind = update.sessionUpdate
  if kind == "agent_message_chunk" then
    self:_enter("agent")
    self:_append_text(block_text(update.content))
  elseif kind == "agent_thought_chunk" then
    self:_enter("thought")
    self:_append_text(block_text(update.content), "> ")
  elseif kind == "user_message_chunk" then
    self:user_text(block_text(update.content))
  elseif kind == "tool_call" then
    self:tool_call(update, true)
  elseif kind == "tool_call_update" then
    self:tool_call(update, false)
  elseif kind == "plan" then
    self:plan(update.entries)
  elseif kind == "session_info_update" then
    if update.title ~= nil then self.title = update.title end
    self:_winbar()
  elseif kind == "usage_update" then
    self.usage = { used = update.used, size = update.size }
    self:_winbar()
  end
end

--- Shows the buffer in a window (focusing an existing one) and returns that window.
function Chat:show()
  local wins = vim.fn.win_findbuf(self.buf)
  if #wins > 0 then
    vim.api.nvim_set_current_win(wins[1])
  else
    vim.cmd("botright vsplit")
    vim.api.nvim_win_set_buf(0, self.buf)
  end
  vim.wo.wrap = true
  -- Thoughts (`> ` quotes) fold away; `zo` opens one.
  vim.wo.foldmethod = "expr"
  vim.wo.foldexpr = "v:lua.require'ratchet.chat'.foldexpr(v:lnum)"
  vim.wo.foldlevel = 0
  vim.wo.foldenable = true
  self:_winbar()
  self:_follow()
  return vim.api.nvim_get_current_win()
end

--- Fold level of a chat line: 1 for thought quotes, 0 otherwise.
function M.foldexpr(lnum)
  return vim.fn.getline(lnum):sub(1, 2) == "> " and 1 or 0
end

function Chat:text()
  return table.concat(vim.api.nvim_buf_get_lines(self.buf, 0, -1, false), "\n")
end

return M
