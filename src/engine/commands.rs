//! Slash commands: `/help`, `/clear`, `/compact`, `/review`, `/plan <goal>`, `/model <name>`,
//! `/mode <name>`.
//!
//! A prompt whose text starts with a known `/name` is a command; anything else (including
//! an unknown `/word`, such as a path) goes to the model unchanged. `/review` and `/plan`
//! become model prompts; the others are answered by the engine itself.

use std::path::Path;
use std::time::Duration;

use super::content::ContentPart;
use super::session::Mode;

/// A command as editors list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandInfo {
    /// Without the slash.
    pub name: &'static str,
    pub description: &'static str,
    /// What to type after the name, if it takes input.
    pub hint: Option<&'static str>,
}

/// Every command, in the order editors should list them.
pub const COMMANDS: &[CommandInfo] = &[
    CommandInfo { name: "help", description: "List the commands", hint: None },
    CommandInfo { name: "review", description: "Review the uncommitted changes (git diff)", hint: None },
    CommandInfo { name: "plan", description: "Make a plan without changing anything", hint: Some("what to plan") },
    CommandInfo { name: "compact", description: "Summarise older messages to free context", hint: None },
    CommandInfo { name: "clear", description: "Start a fresh context (history is kept)", hint: None },
    CommandInfo { name: "model", description: "Show or switch the model", hint: Some("model name") },
    CommandInfo {
        name: "mode",
        description: "Show or switch the permission mode",
        hint: Some("ask | accept-edits | plan | yolo"),
    },
];

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Clear,
    Compact,
    Review,
    Plan(String),
    Model(Option<String>),
    Mode(Option<String>),
}

/// The command in a prompt, if its text starts with one.
pub fn parse(content: &[ContentPart]) -> Option<Command> {
    let ContentPart::Text { text } = content.first()? else { return None };
    let rest = text.trim_start().strip_prefix('/')?;
    let (name, arg) = match rest.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (rest.trim(), ""),
    };
    let arg = (!arg.is_empty()).then(|| arg.to_string());
    Some(match name {
        "help" => Command::Help,
        "clear" => Command::Clear,
        "compact" => Command::Compact,
        "review" => Command::Review,
        "plan" => Command::Plan(arg.unwrap_or_default()),
        "model" => Command::Model(arg),
        "mode" => Command::Mode(arg),
        _ => return None,
    })
}

/// The `/help` text: the engine's commands, then `extra` (the layer above's).
pub fn help_text(extra: &[CommandInfo]) -> String {
    let mut s = String::from("Commands:\n");
    for c in COMMANDS.iter().chain(extra) {
        let hint = c.hint.map(|h| format!(" <{h}>")).unwrap_or_default();
        s.push_str(&format!("- `/{}{}`: {}\n", c.name, hint, c.description));
    }
    s
}

/// The model prompt for `/plan <goal>`.
pub fn plan_prompt(goal: &str) -> String {
    let goal = if goal.is_empty() { "the task we discussed" } else { goal };
    format!(
        "Make a plan for: {goal}\n\nThe session is in plan mode: look around with the read-only tools, \
         then propose the plan with propose_plan when you have it (the user approves it and a fleet of \
         workers carries out its steps; otherwise publish it with update_plan: concrete steps, with \
         priorities) and explain it briefly. Do not change anything yourself."
    )
}

/// The model prompt for `/review`, or a reply when there is nothing to review.
pub async fn review_prompt(cwd: &Path) -> Result<String, String> {
    let diff = git(cwd, &["diff", "HEAD", "--no-color", "--no-ext-diff"]).await?;
    let untracked = git(cwd, &["ls-files", "--others", "--exclude-standard"]).await.unwrap_or_default();
    if diff.trim().is_empty() && untracked.trim().is_empty() {
        return Err("There is nothing to review: the working tree has no uncommitted changes.".into());
    }
    let mut prompt = String::from(
        "Review the following uncommitted changes. Point out bugs, risky changes, missing tests and \
         unclear code, most important first, with file and line. Say briefly what is good. Do not \
         edit files.\n\n```diff\n",
    );
    prompt.push_str(&cut(&diff, REVIEW_DIFF_LIMIT));
    prompt.push_str("\n```\n");
    if !untracked.trim().is_empty() {
        prompt.push_str(&format!("\nNew files not yet tracked by git (read them if relevant):\n{untracked}"));
    }
    Ok(prompt)
}

/// Largest diff put into a review prompt; bigger diffs are cut (the model can read files).
const REVIEW_DIFF_LIMIT: usize = 200 * 1024;

/// The reply to `/mode` without a name, or after a change.
pub fn mode_text(current: Mode) -> String {
    let modes: Vec<_> = Mode::ALL.iter().map(|m| format!("`{}` ({})", m.id(), m.description())).collect();
    format!("Mode: `{}`. Modes: {}.", current.id(), modes.join("; "))
}

async fn git(cwd: &Path, args: &[&str]) -> Result<String, String> {
    let run = tokio::process::Command::new("git")
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .map_err(|_| "git took longer than 20 s".to_string())?
        .map_err(|e| format!("cannot run git: {e}; is it installed?"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("git {} failed: {}", args.join(" "), err.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[… diff cut at {} KiB …]", &s[..end], max / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Command> {
        parse(&[ContentPart::text(s)])
    }

    #[test]
    fn parses_known_commands_only() {
        assert_eq!(p("/help"), Some(Command::Help));
        assert_eq!(p("  /model gpt-4o "), Some(Command::Model(Some("gpt-4o".into()))));
        assert_eq!(p("/mode"), Some(Command::Mode(None)));
        assert_eq!(p("/plan add a cache\nwith tests"), Some(Command::Plan("add a cache\nwith tests".into())));
        assert_eq!(p("/usr/bin is odd"), None);
        assert_eq!(p("please /help"), None);
    }

    #[test]
    fn help_lists_every_command() {
        let h = help_text(&[]);
        for c in COMMANDS {
            assert!(h.contains(&format!("/{}", c.name)));
        }
    }

    #[tokio::test]
    async fn review_of_a_clean_tree_says_so_and_of_a_change_includes_the_diff() {
        let dir = tempfile::tempdir().unwrap();
        let git =
            |args: &[&str]| std::process::Command::new("git").args(args).current_dir(dir.path()).output().unwrap();
        git(&["init", "-q"]);
        git(&["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "init"]);
        assert!(review_prompt(dir.path()).await.unwrap_err().contains("nothing to review"));
        std::fs::write(dir.path().join("f.txt"), "x").unwrap();
        git(&["add", "f.txt"]);
        let prompt = review_prompt(dir.path()).await.unwrap();
        assert!(prompt.contains("+x") && prompt.contains("f.txt"), "{prompt}");
    }
}
