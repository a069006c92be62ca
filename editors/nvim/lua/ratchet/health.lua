--- `:checkhealth ratchet`: the binary, its version and the daemon's status.
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
  local daemon = run(vim.list_extend(vim.deepcopy(cmd), { "daemon", "status" }))
  if daemon and daemon.code == 0 then
    health.ok("daemon: " .. vim.trim((daemon.stdout or ""):gsub("\n", " ")))
  else
    health.info("daemon: not running (" .. vim.trim(daemon and ((daemon.stderr or "") .. (daemon.stdout or "")) or "?") .. ")")
  end
end

return M
