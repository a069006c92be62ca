if vim.g.loaded_ratchet then return end
vim.g.loaded_ratchet = true

vim.api.nvim_create_user_command("Ratchet", function(a) require("ratchet").open(a.args) end,
  { nargs = "*", desc = "Open the ratchet chat for this project; send a prompt if given" })
vim.api.nvim_create_user_command("RatchetCancel", function() require("ratchet").cancel() end,
  { desc = "Cancel the running ratchet turn" })
vim.api.nvim_create_user_command("RatchetSessions", function() require("ratchet").pick_session() end,
  { desc = "List and load past ratchet sessions of this project" })
vim.api.nvim_create_user_command("RatchetMode", function(a) require("ratchet").pick_config("mode", a.args) end,
  { nargs = "?", desc = "Pick (or set) the ratchet session mode" })
vim.api.nvim_create_user_command("RatchetModel", function(a) require("ratchet").pick_config("model", a.args) end,
  { nargs = "?", desc = "Pick (or set) the ratchet session model" })
for command, what in pairs({ RatchetPlans = "plans", RatchetJobs = "jobs", RatchetQuestions = "questions" }) do
  vim.api.nvim_create_user_command(command, function() require("ratchet").list(what) end,
    { desc = "Show ratchet's " .. what .. " (ratchet " .. what .. " list --json)" })
end
vim.api.nvim_create_autocmd("VimLeavePre", { callback = function() require("ratchet").stop_all() end })
