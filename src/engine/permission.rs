//! The permission gate: may this tool call run, must we ask, or is it refused?
//!
//! The decision combines, in this order: deny rules from `config.toml` (deny always wins),
//! "always reject" answers the user gave in this session, read-only tools (always allowed),
//! plan mode (read-only), allow rules, "always allow" answers, and the session's mode.
//! Questions to the user wait in their session's state (`open_session`) until a front end
//! answers them.

use globset::{Glob, GlobMatcher};

use super::config::PermissionRules;
use super::session::Mode;
use super::tools::ToolKind;

/// What the gate says about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refused; the reason goes to the model.
    Deny(String),
    /// Ask the user.
    Ask,
}

/// A remembered "always" answer for a tool in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    Allow,
    Reject,
}

impl Remembered {
    /// The store's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Remembered::Allow => "allow",
            Remembered::Reject => "reject",
        }
    }

    /// Parses the store's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Remembered::Allow),
            "reject" => Some(Remembered::Reject),
            _ => None,
        }
    }
}

/// One `tool` or `tool:pattern` rule.
#[derive(Debug, Clone)]
struct Rule {
    text: String,
    tool: String,
    pattern: Option<GlobMatcher>,
}

impl Rule {
    fn parse(text: &str) -> Result<Rule, String> {
        let (tool, pattern) = match text.split_once(':') {
            Some((tool, pattern)) => (tool.trim(), Some(pattern.trim())),
            None => (text.trim(), None),
        };
        let pattern = pattern
            .map(|p| Glob::new(p).map(|g| g.compile_matcher()))
            .transpose()
            .map_err(|e| format!("bad permission rule \"{text}\" in config.toml: {e}"))?;
        Ok(Rule { text: text.to_string(), tool: tool.to_string(), pattern })
    }

    fn matches(&self, tool: &str, subject: Option<&str>) -> bool {
        if self.tool != "*" && self.tool != tool {
            return false;
        }
        match (&self.pattern, subject) {
            (None, _) => true,
            (Some(p), Some(s)) => p.is_match(s),
            (Some(_), None) => false,
        }
    }
}

/// The configured allow and deny rules, compiled.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

impl Policy {
    /// Compiles the `[permissions]` rules; a bad glob is an error naming the rule.
    pub fn new(rules: &PermissionRules) -> Result<Policy, String> {
        let compile = |v: &[String]| v.iter().map(|r| Rule::parse(r)).collect::<Result<Vec<_>, _>>();
        Ok(Policy { allow: compile(&rules.allow)?, deny: compile(&rules.deny)? })
    }

    /// Decides one call. `subject` is the command (shell) or path (file tools) the rules'
    /// patterns match against.
    pub fn decide(
        &self,
        mode: Mode,
        tool: &str,
        kind: ToolKind,
        subject: Option<&str>,
        remembered: Option<Remembered>,
    ) -> Verdict {
        if let Some(rule) = self.deny.iter().find(|r| r.matches(tool, subject)) {
            return Verdict::Deny(format!("denied by the rule \"{}\" in config.toml", rule.text));
        }
        if remembered == Some(Remembered::Reject) {
            return Verdict::Deny(format!("the user chose to always reject {tool} in this session"));
        }
        if !kind.has_side_effects() {
            return Verdict::Allow;
        }
        if mode == Mode::Plan {
            return Verdict::Deny(
                "the session is in plan mode (read-only); propose a plan instead, the user can switch modes".into(),
            );
        }
        if self.allow.iter().any(|r| r.matches(tool, subject)) || remembered == Some(Remembered::Allow) {
            return Verdict::Allow;
        }
        match (mode, kind) {
            (Mode::Yolo, _) => Verdict::Allow,
            (Mode::AcceptEdits, ToolKind::Edit | ToolKind::Delete | ToolKind::Move) => Verdict::Allow,
            _ => Verdict::Ask,
        }
    }
}

#[cfg(test)]
#[path = "permission_prop_tests.rs"]
mod prop_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> Policy {
        Policy::new(&PermissionRules {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            deny_paths: vec![],
        })
        .unwrap()
    }

    #[test]
    fn reads_are_free_writes_ask_in_ask_mode() {
        let p = Policy::default();
        assert_eq!(p.decide(Mode::Ask, "read_file", ToolKind::Read, None, None), Verdict::Allow);
        assert_eq!(p.decide(Mode::Ask, "edit_file", ToolKind::Edit, None, None), Verdict::Ask);
        assert_eq!(p.decide(Mode::Ask, "shell", ToolKind::Execute, Some("ls"), None), Verdict::Ask);
    }

    #[test]
    fn modes() {
        let p = Policy::default();
        assert_eq!(p.decide(Mode::AcceptEdits, "edit_file", ToolKind::Edit, None, None), Verdict::Allow);
        assert_eq!(p.decide(Mode::AcceptEdits, "shell", ToolKind::Execute, None, None), Verdict::Ask);
        assert_eq!(p.decide(Mode::Yolo, "shell", ToolKind::Execute, None, None), Verdict::Allow);
        assert!(matches!(p.decide(Mode::Plan, "edit_file", ToolKind::Edit, None, None), Verdict::Deny(_)));
        assert_eq!(p.decide(Mode::Plan, "grep", ToolKind::Search, None, None), Verdict::Allow);
    }

    #[test]
    fn deny_wins_over_allow_and_yolo() {
        let p = policy(&["shell"], &["shell:rm *"]);
        assert_eq!(p.decide(Mode::Ask, "shell", ToolKind::Execute, Some("cargo test"), None), Verdict::Allow);
        let v = p.decide(Mode::Yolo, "shell", ToolKind::Execute, Some("rm -rf /"), None);
        assert!(matches!(v, Verdict::Deny(ref m) if m.contains("shell:rm *")), "{v:?}");
    }

    #[test]
    fn remembered_answers() {
        let p = Policy::default();
        let allow = Some(Remembered::Allow);
        let reject = Some(Remembered::Reject);
        assert_eq!(p.decide(Mode::Ask, "shell", ToolKind::Execute, None, allow), Verdict::Allow);
        assert!(matches!(p.decide(Mode::Yolo, "shell", ToolKind::Execute, None, reject), Verdict::Deny(_)));
    }

    #[test]
    fn bad_glob_names_the_rule() {
        let err = Policy::new(&PermissionRules { allow: vec!["shell:[".into()], ..Default::default() }).unwrap_err();
        assert!(err.contains("shell:["), "{err}");
    }
}
