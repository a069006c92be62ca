--- Checks the configuration snippets editors/nvim/README.md documents, as far as they can be
--- checked without the other plugins: the lazy.nvim spec names only commands this plugin
--- defines, and each CodeCompanion / avante.nvim / agentic.nvim entry runs as Lua (with those
--- plugins' entry points stubbed to record what `setup` gets), selects its ratchet entry, and
--- names a command that, started as the entry says, answers ACP `initialize` with protocol
--- version 1 and no auth methods (so those clients skip `authenticate`).
local M = {}

--- The base adapter CodeCompanion's snippet extends, as far as the snippet relies on it.
local GEMINI_CLI_BASE = {
  name = "gemini_cli",
  type = "acp",
  commands = { default = { "gemini", "--experimental-acp" } },
  defaults = { auth_method = "oauth-personal", mcpServers = {} },
  env = { GEMINI_API_KEY = "GEMINI_API_KEY" },
}

--- The fenced Lua blocks of `text`.
local function lua_blocks(text)
  local blocks = {}
  for code in text:gmatch("```lua\n(.-)\n```") do
    blocks[#blocks + 1] = code
  end
  return blocks
end

--- Runs `code`, then `after` (if given), with `modules` preloaded (name -> table), restoring
--- package.loaded afterwards.
local function run_with(code, modules, after)
  local saved = {}
  for name, mod in pairs(modules) do
    saved[name] = package.loaded[name]
    package.loaded[name] = mod
  end
  local chunk, err = load(code, "README snippet")
  local ok, run_err = false, err
  if chunk then ok, run_err = pcall(function()
    chunk()
    if after then after() end
  end) end
  for name in pairs(modules) do package.loaded[name] = saved[name] end
  if not ok then error("the snippet does not run: " .. tostring(run_err) .. "\n" .. code, 0) end
end

--- What each client would spawn for ratchet, from its snippet: a list of { client, argv }.
local function commands_from(blocks)
  local found = {}
  for _, code in ipairs(blocks) do
    if code:find('require("codecompanion").setup', 1, true) then
      local opts, adapter
      run_with(code, {
        codecompanion = { setup = function(o) opts = o end },
        ["codecompanion.adapters"] = {
          extend = function(base, o)
            assert(base == "gemini_cli", "extends an unknown adapter: " .. tostring(base))
            return vim.tbl_deep_extend("force", vim.deepcopy(GEMINI_CLI_BASE), o)
          end,
        },
      }, function()
        -- CodeCompanion resolves the chat's adapter by calling its function.
        adapter = opts.adapters.acp[opts.interactions.chat.adapter]()
      end)
      found[#found + 1] = { "CodeCompanion", adapter.commands.default }
    elseif code:find('require("avante").setup', 1, true) or code:find('require("agentic").setup', 1, true) then
      local client = code:find("avante", 1, true) and "avante.nvim" or "agentic.nvim"
      local opts
      run_with(code, { avante = { setup = function(o) opts = o end }, agentic = { setup = function(o) opts = o end } })
      local entry = opts.acp_providers[opts.provider]
      assert(entry, client .. ": provider " .. tostring(opts.provider) .. " has no acp_providers entry")
      found[#found + 1] = { client, vim.list_extend({ entry.command }, entry.args or {}) }
    end
  end
  return found
end

--- Starts `argv` (its "ratchet" replaced by the binary under test) and sends `initialize`.
local function initialize(argv, bin, wait_for)
  local rpc = require("ratchet.rpc")
  local cmd = vim.deepcopy(argv)
  if cmd[1] == "ratchet" then cmd[1] = bin end
  local conn = rpc.spawn(cmd, {})
  local answer = nil
  conn:request("initialize", { protocolVersion = 1, clientCapabilities = vim.empty_dict() }, function(err, result)
    answer = { err = err, result = result }
  end)
  wait_for(table.concat(argv, " ") .. " to answer initialize", function() return answer ~= nil end)
  conn:stop()
  return answer
end

--- The tests, for chat_test.lua's runner.
function M.tests(readme_path, bin, check, wait_for)
  local f = assert(io.open(readme_path, "rb"))
  local readme = f:read("*a")
  f:close()
  local blocks = lua_blocks(readme)
  return {
    { "README: the lazy.nvim spec's `cmd` names only commands the plugin defines", function()
      local spec = nil
      for _, code in ipairs(blocks) do
        if code:find("ratchet.nvim", 1, true) and code:find("cmd = {", 1, true) then spec = code end
      end
      check(spec, "no lazy.nvim spec with `cmd` in the README")
      local names = spec:match("cmd = (%b{})")
      local count = 0
      for name in names:gmatch('"([^"]+)"') do
        count = count + 1
        check(vim.fn.exists(":" .. name) == 2, "the lazy.nvim spec names :" .. name .. ", which the plugin does not define")
      end
      check(count >= 8, "the spec names " .. count .. " commands")
    end },
    { "README: the CodeCompanion, avante.nvim and agentic.nvim entries run `ratchet acp`, which answers initialize", function()
      local found = commands_from(blocks)
      local clients = vim.tbl_map(function(c) return c[1] end, found)
      check(#found == 3, "expected three client entries, found " .. vim.inspect(clients))
      for _, c in ipairs(found) do
        check(vim.deep_equal(c[2], { "ratchet", "acp" }), c[1] .. " runs " .. vim.inspect(c[2]))
        local answer = initialize(c[2], bin, wait_for)
        check(answer.err == nil and answer.result.protocolVersion == 1, c[1] .. ": " .. vim.inspect(answer))
        check(#(answer.result.authMethods or {}) == 0, c[1] .. ": ratchet advertises auth methods "
          .. vim.inspect(answer.result.authMethods) .. "; the README says none is needed")
      end
    end },
  }
end

return M
