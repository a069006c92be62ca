--- ratchet.nvim: chat with the `ratchet` agent over ACP from Neovim.
---
--- One session per project (the cwd when `:Ratchet` first runs there); its chat buffer is a
--- markdown scratch buffer. See editors/nvim/README.md.
local M = {}

M.config = {
  --- The ratchet command (a list); `acp` is appended.
  cmd = { "ratchet" },
  --- Extra environment for the spawned process (merged over Neovim's own).
  env = nil,
}

--- cwd -> Session
M.sessions = {}

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", M.config, opts or {})
  if type(M.config.cmd) == "string" then M.config.cmd = { M.config.cmd } end
end

local function project_root()
  return vim.fs.normalize(vim.fn.getcwd())
end

--- The session for the current project, started when missing (or when its process exited).
function M.session(cwd)
  cwd = cwd or project_root()
  local s = M.sessions[cwd]
  if s and s.exited == nil then return s end
  s = require("ratchet.session").start({ cmd = M.config.cmd, env = M.config.env, cwd = cwd })
  M.sessions[cwd] = s
  vim.keymap.set("n", "<CR>", function()
    vim.ui.input({ prompt = "ratchet> " }, function(text)
      if text and text ~= "" then s:prompt(text) end
    end)
  end, { buffer = s.chat.buf, desc = "ratchet: send a prompt" })
  return s
end

--- `:Ratchet [prompt]`: opens or focuses the chat; sends the prompt when one is given.
function M.open(prompt)
  local s = M.session()
  s.chat:show()
  if prompt and prompt ~= "" then s:prompt(prompt) end
  return s
end

function M.cancel()
  local s = M.sessions[project_root()]
  if s then s:cancel() end
end

function M.pick_session()
  local s = M.session()
  s.chat:show()
  s:pick_session()
end

--- `:RatchetMode [id]` / `:RatchetModel [id]`: the agent's `mode` / `model` config option.
function M.pick_config(category, value)
  M.session():pick_config(category, value)
end

--- `:RatchetPlans` / `:RatchetJobs` / `:RatchetQuestions`: `ratchet <what> list --json`.
function M.list(what, on_done)
  require("ratchet.lists").show(M.config.cmd, what, on_done)
end

function M.stop_all()
  for _, s in pairs(M.sessions) do s:stop() end
end

return M
