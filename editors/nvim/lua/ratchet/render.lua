--- What the chat shows for a tool call or a plan: pure functions from ACP values to lines plus
--- the highlights on them (`{ line, col_start, col_end, group }`, 0-based, `col_end` -1 for the
--- whole line). chat.lua puts them in the buffer and keeps them in place.
local M = {}

--- Per ACP tool call status: its mark, its highlight group, and a child agent's (fleet
--- worker's, team member's) state in words. Plan entries use the first three marks.
local STATUS = {
  pending = { mark = "[ ]", group = "RatchetPending", state = "starting" },
  in_progress = { mark = "[~]", group = "RatchetRunning", state = "working" },
  completed = { mark = "[x]", group = "RatchetDone", state = "done" },
  failed = { mark = "[!]", group = "RatchetFailed", state = "failed" },
  cancelled = { mark = "[-]", group = "RatchetCancelled", state = "cancelled" },
}
local UNKNOWN_STATUS = { mark = "[?]", group = "RatchetPending" }
--- The longest live-output excerpt on a child agent's line (in characters).
local DETAIL_MAX = 60

--- Highlight groups (linked by default, so colour schemes can restyle them).
local GROUPS = {
  RatchetDiffAdd = "Added",
  RatchetDiffDelete = "Removed",
  RatchetDiffHunk = "Statement",
  RatchetDiffFile = "Type",
  RatchetPending = "Comment",
  RatchetRunning = "DiagnosticWarn",
  RatchetDone = "DiagnosticOk",
  RatchetFailed = "DiagnosticError",
  RatchetCancelled = "Comment",
  RatchetAgentDetail = "Comment",
}

local function link_groups()
  for name, target in pairs(GROUPS) do
    vim.api.nvim_set_hl(0, name, { link = target, default = true })
  end
end

--- Links the groups now and again after every `:colorscheme` (which clears them).
function M.define_highlights()
  link_groups()
  vim.api.nvim_create_autocmd("ColorScheme", {
    group = vim.api.nvim_create_augroup("ratchet_highlights", { clear = true }),
    callback = link_groups,
  })
end

--- `path` relative to the project, as a diff header shows it.
local function relative(path, cwd)
  if cwd and path:sub(1, #cwd + 1) == cwd .. "/" then return path:sub(#cwd + 2) end
  return path
end

--- The last non-empty line of the call's newest text content, shortened: what a child agent
--- is doing now (its live output's tail, or how it ended).
local function live_detail(call)
  local text = nil
  for _, item in ipairs(call.content or {}) do
    if item.type == "content" and type(item.content) == "table" and item.content.type == "text" then
      text = item.content.text
    end
  end
  if not text then return nil end
  local last = nil
  for _, l in ipairs(vim.split(text, "\n", { plain = true })) do
    l = vim.trim(l)
    if l ~= "" then last = l end
  end
  if not last then return nil end
  if vim.fn.strchars(last) > DETAIL_MAX then last = vim.fn.strcharpart(last, 0, DETAIL_MAX - 1) .. "…" end
  return last
end

--- The head line of a call: a team member shows its name, role, team and state; a fleet
--- worker its step and state; any other call its kind and title.
local function head_line(call, icon)
  local raw = type(call.rawInput) == "table" and call.rawInput or {}
  local state = (STATUS[call.status or "pending"] or {}).state or tostring(call.status)
  local line
  if raw.team and raw.member then
    line = ("- %s **%s** (%s) · team %s · %s"):format(icon, raw.member, raw.role or "member", raw.team, state)
  elseif raw.plan and raw.step then
    local title = (call.title or tostring(raw.step)):gsub("^Worker · ", "")
    line = ("- %s **worker** `%s` · %s"):format(icon, title, state)
  else
    return ("- %s **%s** `%s`"):format(icon, call.kind or "other", call.title or call.toolCallId), false
  end
  local detail = live_detail(call)
  if detail and detail ~= state then line = line .. " — " .. detail end
  return line, true
end

--- A tool call as one compact line plus, for diffs, a fenced diff block; `cwd` shortens paths.
function M.tool_call(call, cwd)
  local status = STATUS[call.status or "pending"] or UNKNOWN_STATUS
  local head, is_agent = head_line(call, status.mark)
  local lines = { head }
  local hls = { { 0, 2, 2 + #status.mark, status.group } }
  if is_agent then
    local dash = head:find(" — ", 1, true)
    if dash then table.insert(hls, { 0, dash - 1, -1, "RatchetAgentDetail" }) end
  end
  local function add(line, group)
    table.insert(lines, line)
    if group then table.insert(hls, { #lines - 1, 2, -1, group }) end
  end
  for _, item in ipairs(call.content or {}) do
    if item.type == "terminal" then
      add("  output: `:buffer ratchet://terminal/" .. tostring(item.terminalId) .. "`")
    elseif item.type == "diff" then
      local path = relative(item.path, cwd)
      add("  ```diff")
      add("  --- " .. (item.oldText and path or "/dev/null"), "RatchetDiffFile")
      add("  +++ " .. path, "RatchetDiffFile")
      local old = vim.split(item.oldText or "", "\n", { plain = true })
      local new = vim.split(item.newText or "", "\n", { plain = true })
      local diff = (vim.text and vim.text.diff) or vim.diff
      local ok, hunks = pcall(diff, table.concat(old, "\n"), table.concat(new, "\n"), { result_type = "unified", ctxlen = 1 })
      if ok and type(hunks) == "string" then
        for _, l in ipairs(vim.split(hunks, "\n", { plain = true, trimempty = true })) do
          local c = l:sub(1, 1)
          add("  " .. l, (c == "+" and "RatchetDiffAdd") or (c == "-" and "RatchetDiffDelete") or (c == "@" and "RatchetDiffHunk") or nil)
        end
      end
      add("  ```")
    end
  end
  return lines, hls
end

--- A plan as a checklist under a bold heading.
function M.plan(entries)
  local lines = { "**Plan**" }
  local hls = {}
  for _, e in ipairs(entries or {}) do
    local status = STATUS[e.status] or STATUS.pending
    table.insert(lines, ("- %s %s"):format(status.mark, e.content or ""))
    table.insert(hls, { #lines - 1, 2, 2 + #status.mark, status.group })
  end
  return lines, hls
end

return M
