--- `:checkhealth ratchet`: the binary, its version, the provider it would use and the daemon's status.
local M = {}

local function run(cmd)
  local ok, res = pcall(function() return vim.system(cmd, { text = true }):wait(5000) end)
  if not ok then return nil, tostring(res) end
  return res
end

function M.check()
  local health = vim.health
  health.start("ratchet")
  local cmd = require("ratchet").config.cmd
  local exe = vim.fn.exepath(cmd[1])
  if exe == "" then
    health.error(("`%s` not found on PATH"):format(cmd[1]),
      { "Install ratchet (cargo install --path .) or set `cmd` in require('ratchet').setup{}" })
    return
  end
  health.ok("binary: " .. exe)
  local version = run(vim.list_extend(vim.deepcopy(cmd), { "--version" }))
  if version and version.code == 0 then
    health.ok("version: " .. vim.trim(version.stdout or ""))
  else
    health.warn("`ratchet --version` failed")
  end
  -- The provider: RATCHET_PROVIDER/RATCHET_MODEL win, then the stored default provider.
  local env = require("ratchet").config.env or {}
  local provider = env.RATCHET_PROVIDER or vim.env.RATCHET_PROVIDER
  local model = env.RATCHET_MODEL or vim.env.RATCHET_MODEL
  if provider then
    health.ok(("provider: %s (RATCHET_PROVIDER)%s"):format(provider, model and (", model " .. model) or ""))
  else
    local stored = run(vim.list_extend(vim.deepcopy(cmd), { "provider", "list" }))
    local default = stored and stored.code == 0 and (stored.stdout or ""):match("[^\n]*%*[^\n]*")
    if default then
      health.ok("provider: " .. vim.trim(default) .. " (stored default)")
    else
      health.info("provider: none chosen; ratchet picks one from the API key variables it finds "
        .. "(see `ratchet provider add` and the main README's \"Using a real model\")")
    end
  end
  for cwd, session in pairs(require("ratchet").sessions) do
    local opt = session.exited == nil and session:config_option("model")
    if opt then health.ok(("session in %s uses model %s"):format(cwd, tostring(opt.currentValue))) end
  end
  local daemon = run(vim.list_extend(vim.deepcopy(cmd), { "daemon", "status" }))
  if daemon and daemon.code == 0 then
    health.ok("daemon: " .. vim.trim((daemon.stdout or ""):gsub("\n", " ")))
  else
    health.info("daemon: not running (" .. vim.trim(daemon and ((daemon.stderr or "") .. (daemon.stdout or "")) or "?") .. ")")
  end
end

return M
