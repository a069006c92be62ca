--- `elicitation/create` in form mode: each field of the flat schema becomes one
--- `vim.ui.select` (enums, booleans, multi-selects) or `vim.ui.input` (text, numbers), asked
--- one after the other. Dismissing a required field cancels the form.
local M = {}

--- Property names: the required ones first (in the schema's order), then the rest by name
--- (Lua tables forget JSON object order).
local function field_order(schema)
  local names, seen = {}, {}
  for _, name in ipairs(schema.required or {}) do
    if schema.properties and schema.properties[name] and not seen[name] then
      names[#names + 1], seen[name] = name, true
    end
  end
  local rest = {}
  for name in pairs(schema.properties or {}) do
    if not seen[name] then rest[#rest + 1] = name end
  end
  table.sort(rest)
  return vim.list_extend(names, rest)
end

--- `{value, label}` choices of an enum-like schema (`oneOf`/`anyOf` of consts, or `enum`).
local function choices(prop)
  local out = {}
  for _, o in ipairs(prop.oneOf or prop.anyOf or {}) do
    out[#out + 1] = { value = o.const, label = o.title or tostring(o.const) }
  end
  if #out == 0 then
    for i, v in ipairs(prop.enum or {}) do
      out[#out + 1] = { value = v, label = (prop.enumNames and prop.enumNames[i]) or tostring(v) }
    end
  end
  return out
end

--- Asks for one field; `done(value)` gets nil when the user dismissed it.
local function ask_field(name, prop, message, done)
  local label = ("%s%s"):format(message and (message .. " — ") or "", prop.title or name)
  if prop.type == "boolean" then
    vim.ui.select({ { value = true, label = "yes" }, { value = false, label = "no" } },
      { prompt = label, format_item = function(c) return c.label end, kind = "ratchet_elicitation" },
      function(c) done(c and c.value) end)
  elseif prop.type == "array" then
    local options = choices(prop.items or {})
    local picked = {}
    local function next_pick()
      local remaining = { { label = "(done)" } }
      for _, c in ipairs(options) do
        if not vim.tbl_contains(picked, c.value) then remaining[#remaining + 1] = c end
      end
      vim.ui.select(remaining, {
        prompt = label .. " (pick one at a time, then done)",
        format_item = function(c) return c.label end,
        kind = "ratchet_elicitation",
      }, function(c)
        if not c then return done(nil) end
        if c.value == nil then return done(picked) end
        picked[#picked + 1] = c.value
        next_pick()
      end)
    end
    next_pick()
  elseif #choices(prop) > 0 then
    vim.ui.select(choices(prop), { prompt = label, format_item = function(c) return c.label end, kind = "ratchet_elicitation" },
      function(c) done(c and c.value) end)
  else
    vim.ui.input({ prompt = label .. ": ", default = prop.default and tostring(prop.default) or nil }, function(text)
      if text == nil then return done(nil) end
      if prop.type == "number" or prop.type == "integer" then return done(tonumber(text)) end
      done(text)
    end)
  end
end

--- Handles one `elicitation/create` request.
function M.handle(params, respond)
  if params.mode ~= "form" or type(params.requestedSchema) ~= "table" then
    return respond({ code = -32602, message = "ratchet.nvim supports form elicitation only" })
  end
  local schema = params.requestedSchema
  local required = {}
  for _, name in ipairs(schema.required or {}) do required[name] = true end
  local names = field_order(schema)
  local content = vim.empty_dict()
  local i = 0
  local first = true
  local function step()
    i = i + 1
    local name = names[i]
    if not name then return respond(nil, { action = "accept", content = content }) end
    ask_field(name, schema.properties[name], first and params.message or nil, function(value)
      first = false
      if value == nil or value == "" then
        if required[name] then return respond(nil, { action = "cancel" }) end
      else
        content[name] = value
      end
      step()
    end)
  end
  step()
end

return M
