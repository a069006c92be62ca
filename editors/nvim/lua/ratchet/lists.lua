--- `:RatchetPlans`, `:RatchetJobs`, `:RatchetQuestions`: the CLI's `<what> list --json` (which
--- asks the daemon when one runs, else reads the data directory) shown in a scratch buffer,
--- one record per line.
local M = {}

--- Fields shown first, in this order, when a record has them; the rest follow by name.
local LEAD_FIELDS = { "id", "kind", "type", "status", "title", "goal", "question", "session_id", "model", "detail" }

local function scalar(v)
  if type(v) == "table" then return vim.json.encode(v) end
  return tostring(v)
end

--- The record's scalar fields, with those of nested objects (a plan's `plan.goal`) pulled up
--- when the top level lacks them.
local function flatten(record)
  local flat = {}
  for key, v in pairs(record) do
    if type(v) ~= "table" then flat[key] = v end
  end
  for _, v in pairs(record) do
    if type(v) == "table" and not vim.islist(v) then
      for key, inner in pairs(v) do
        if flat[key] == nil and type(inner) ~= "table" then flat[key] = inner end
      end
    end
  end
  return flat
end

--- One line for a record: the lead fields, then any other scalar fields as key=value.
function M.format_record(record)
  if type(record) ~= "table" then return scalar(record) end
  record = flatten(record)
  local parts, used = {}, {}
  for _, key in ipairs(LEAD_FIELDS) do
    if record[key] ~= nil and record[key] ~= vim.NIL then
      parts[#parts + 1] = key == "id" and ("**" .. scalar(record[key]) .. "**") or scalar(record[key])
      used[key] = true
    end
  end
  local rest = {}
  for key, v in pairs(record) do
    if not used[key] and type(v) ~= "table" and v ~= vim.NIL then rest[#rest + 1] = key .. "=" .. scalar(v) end
  end
  table.sort(rest)
  vim.list_extend(parts, rest)
  return "- " .. table.concat(parts, "  "):gsub("\n", " ")
end

--- Runs `cmd <what> list --json` and shows the result in `ratchet://<what>`; `on_done(buf)`.
function M.show(cmd, what, on_done)
  local argv = vim.list_extend(vim.deepcopy(cmd), { what, "list", "--json" })
  vim.system(argv, { text = true }, function(out)
    vim.schedule(function()
      local lines
      if out.code ~= 0 then
        lines = { "# ratchet " .. what, "", "`" .. table.concat(argv, " ") .. "` failed (exit " .. out.code .. "):", "" }
        vim.list_extend(lines, vim.split(vim.trim(out.stderr or ""), "\n", { plain = true }))
      else
        local ok, records = pcall(vim.json.decode, out.stdout or "", { luanil = { object = true, array = true } })
        if not ok or type(records) ~= "table" then records = {} end
        lines = { ("# ratchet %s (%d)"):format(what, #records), "" }
        for _, r in ipairs(records) do lines[#lines + 1] = M.format_record(r) end
        if #records == 0 then lines[#lines + 1] = "_none_" end
      end
      local name = "ratchet://" .. what
      local buf = vim.fn.bufnr(name)
      if buf == -1 then
        buf = vim.api.nvim_create_buf(true, true)
        vim.api.nvim_buf_set_name(buf, name)
        vim.bo[buf].buftype = "nofile"
        vim.bo[buf].filetype = "markdown"
      end
      vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
      vim.api.nvim_set_current_buf(buf)
      if on_done then on_done(buf) end
    end)
  end)
end

return M
