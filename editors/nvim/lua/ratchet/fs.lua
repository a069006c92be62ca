--- The client side of `fs/read_text_file` and `fs/write_text_file`: loaded buffers win over
--- the disk (the agent sees unsaved edits), and writes to an open file go through its buffer
--- so `u` undoes the agent's edit.
local M = {}

local function normalize(path)
  return vim.fs.normalize(vim.fn.fnamemodify(path, ":p"))
end

--- The loaded buffer showing `path`, if any.
function M.loaded_buffer(path)
  local want = normalize(path)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and vim.bo[buf].buftype == "" then
      local name = vim.api.nvim_buf_get_name(buf)
      if name ~= "" and normalize(name) == want then return buf end
    end
  end
  return nil
end

local function slice(lines, line, limit)
  local first = math.max(1, tonumber(line) or 1)
  local last = #lines
  if limit then last = math.min(last, first + tonumber(limit) - 1) end
  local out = {}
  for i = first, last do out[#out + 1] = lines[i] end
  return out
end

--- Returns (content) or (nil, rpc error).
function M.read(params)
  local path = params.path
  if type(path) ~= "string" then
    return nil, { code = -32602, message = "fs/read_text_file needs a string `path`" }
  end
  local buf = M.loaded_buffer(path)
  local lines, trailing_newline
  if buf then
    lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
    trailing_newline = vim.bo[buf].eol or vim.bo[buf].fixeol
  else
    local f = io.open(path, "rb")
    if not f then
      return nil, { code = -32002, message = "Resource not found: " .. path }
    end
    local data = f:read("*a")
    f:close()
    trailing_newline = data:sub(-1) == "\n"
    lines = vim.split(data, "\n", { plain = true })
    if trailing_newline then table.remove(lines) end
  end
  local partial = params.line ~= nil or params.limit ~= nil
  local picked = slice(lines, params.line, params.limit)
  local text = table.concat(picked, "\n")
  if #picked > 0 and (trailing_newline or (partial and #picked < #lines)) then text = text .. "\n" end
  return text
end

--- Returns true or (nil, rpc error).
function M.write(params)
  local path, content = params.path, params.content
  if type(path) ~= "string" or type(content) ~= "string" then
    return nil, { code = -32602, message = "fs/write_text_file needs string `path` and `content`" }
  end
  local buf = M.loaded_buffer(path)
  if buf then
    local lines = vim.split(content, "\n", { plain = true })
    local ends_with_newline = content:sub(-1) == "\n"
    if ends_with_newline then table.remove(lines) end
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
    vim.bo[buf].eol = ends_with_newline
    -- Save, so tools that read the disk (builds, tests) see the edit; undo still restores.
    local ok, err = pcall(vim.api.nvim_buf_call, buf, function() vim.cmd("silent keepalt noautocmd write!") end)
    if not ok then
      return nil, { code = -32603, message = "could not save " .. path .. ": " .. tostring(err) }
    end
    return true
  end
  vim.fn.mkdir(vim.fs.dirname(path), "p")
  local f, err = io.open(path, "wb")
  if not f then
    return nil, { code = -32603, message = "could not write " .. path .. ": " .. tostring(err) }
  end
  f:write(content)
  f:close()
  return true
end

return M
