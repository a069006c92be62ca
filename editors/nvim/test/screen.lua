--- A screen grab of this Neovim, for the picture in docs/: a UI (ext_linegrid, rgb colours)
--- attaches to this process's own RPC server over a libuv pipe, exactly as a GUI would, and
--- the redraw events it receives are applied to a grid of cells until the first flush, when
--- the screen is complete. Everything stays asynchronous, so the event loop that serves the
--- attach (inside vim.wait) also delivers its redraws to us.
local M = {}

local ATTACH_TIMEOUT_MS = 5000

local function blank_rows(width, height)
  local rows = {}
  for r = 1, height do
    rows[r] = {}
    for c = 1, width do rows[r][c] = { " ", 0 } end
  end
  return rows
end

--- Applies one redraw event (`{name, args...}`) to `screen`.
local function apply(screen, event)
  local name = event[1]
  for i = 2, #event do
    local a = event[i]
    if name == "grid_resize" then
      screen.width, screen.height = a[2], a[3]
      screen.rows = blank_rows(a[2], a[3])
    elseif name == "grid_clear" then
      screen.rows = blank_rows(screen.width, screen.height)
    elseif name == "default_colors_set" then
      screen.default = { fg = a[1], bg = a[2], sp = a[3] }
    elseif name == "hl_attr_define" then
      local attrs = {}
      for k, v in pairs(a[2]) do attrs[k] = v end
      screen.hl[tostring(a[1])] = attrs
    elseif name == "grid_line" then
      local row = screen.rows[a[2] + 1]
      local col, hl = a[3] + 1, 0
      for _, cell in ipairs(a[4]) do
        if cell[2] ~= nil then hl = cell[2] end
        for _ = 1, (cell[3] or 1) do
          if row and row[col] then row[col] = { cell[1], hl } end
          col = col + 1
        end
      end
    elseif name == "grid_scroll" then
      -- Rows top..bot-1 (and columns left..right-1) move up by `rows` (down when negative).
      local top, bot, left, right, count = a[2], a[3], a[4], a[5], a[6]
      local from, to, step = top, bot - 1, 1
      if count < 0 then from, to, step = bot - 1, top, -1 end
      for r = from, to, step do
        local src = r + count
        if src >= top and src < bot then
          for c = left, right - 1 do screen.rows[r + 1][c + 1] = screen.rows[src + 1][c + 1] end
        end
      end
    elseif name == "flush" then
      screen.flushed = true
    end
  end
end

--- Attaches a `width` x `height` UI, returns the screen at its first flush:
--- `{ width, height, default = {fg,bg,sp}, hl = {[id] = attrs}, rows = {{{text, hl}, ...}, ...} }`.
function M.capture(width, height)
  local addr = vim.v.servername
  if addr == nil or addr == "" then addr = vim.fn.serverstart() end
  local screen = { width = width, height = height, rows = blank_rows(width, height), hl = {}, default = {} }
  local pipe = assert(vim.uv.new_pipe(false))
  local unpack = vim.mpack.Unpacker()
  local pending, failure, detached = "", nil, false
  pipe:connect(addr, function(err)
    if err then
      failure = err
      return
    end
    pipe:read_start(function(read_err, data)
      if read_err then failure = read_err end
      if not data then return end
      pending = pending .. data
      while #pending > 0 do
        local ok, msg, pos = pcall(unpack, pending)
        if not ok then failure = tostring(msg) return end
        if msg == nil then break end
        pending = pending:sub(pos)
        -- [2, "redraw", [events]] notifications; [1, id, err, result] responses.
        if msg[1] == 2 and msg[2] == "redraw" and not screen.flushed then
          for _, event in ipairs(msg[3]) do apply(screen, event) end
        elseif msg[1] == 1 then
          if msg[3] ~= vim.NIL then failure = vim.inspect(msg[3]) end
          if msg[2] == 2 then detached = true end
        end
      end
    end)
    pipe:write(vim.mpack.encode({ 0, 1, "nvim_ui_attach", { width, height, { ext_linegrid = true, rgb = true } } }))
  end)
  local done = vim.wait(ATTACH_TIMEOUT_MS, function() return screen.flushed or failure ~= nil end, 10)
  pipe:write(vim.mpack.encode({ 0, 2, "nvim_ui_detach", {} }))
  vim.wait(ATTACH_TIMEOUT_MS, function() return detached or failure ~= nil end, 10)
  pipe:read_stop()
  pipe:close()
  if failure then error("screen capture: " .. tostring(failure), 2) end
  if not done then error("screen capture: no flush within " .. ATTACH_TIMEOUT_MS .. " ms", 2) end
  screen.flushed = nil
  return screen
end

--- The screen with its highlight ids renumbered in order of first use and unused ones
--- dropped (id 0 is the default colours), so it depends only on what is visible, not on which
--- highlights this Neovim happened to define before.
function M.normalized(screen)
  local ids, hl = { [0] = 0 }, { ["0"] = vim.empty_dict() }
  local rows, next_id = {}, 1
  for r, row in ipairs(screen.rows) do
    rows[r] = {}
    for c, cell in ipairs(row) do
      local id = ids[cell[2]]
      if not id then
        id, next_id = next_id, next_id + 1
        ids[cell[2]] = id
        local attrs = screen.hl[tostring(cell[2])]
        hl[tostring(id)] = (attrs and next(attrs)) and attrs or vim.empty_dict()
      end
      rows[r][c] = { cell[1], id }
    end
  end
  return { width = screen.width, height = screen.height, default = screen.default, hl = hl, rows = rows }
end

--- The screen's text, one line per row, trailing blanks removed.
function M.text(screen)
  local out = {}
  for _, row in ipairs(screen.rows) do
    local parts = {}
    for _, cell in ipairs(row) do parts[#parts + 1] = cell[1] end
    out[#out + 1] = (table.concat(parts):gsub("%s+$", ""))
  end
  return table.concat(out, "\n")
end

return M
