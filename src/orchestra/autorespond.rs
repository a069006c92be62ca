//! Autorespond rules: a project's `.ratchet/autorespond.yaml` answers routine questions so
//! nobody has to, and sends the rest to people.
//!
//! ```yaml
//! rules:
//!   - match: "run the tests"   # a regex, matched against the question's title
//!     action: approve          # approve | reply | queue
//!     message: "optional text"
//! ```
//!
//! The first rule whose regex matches the title decides; a question no rule matches goes to
//! people, as does one a `queue` rule matches (which stops later rules from answering it).
//! The regex is case-sensitive and matches anywhere in the title: write `(?i)` for any case
//! and `^…$` for the whole title. A file that does not parse is an error rather than "no
//! rules", so a typo never silently sends every question to people (or answers them).

use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use super::questions::{Answer, QuestionKind};

/// Where a project's rules live, under its working directory.
pub const RULES_FILE: &str = ".ratchet/autorespond.yaml";

/// What an answered `approve` rule says to an `ask` question when it has no `message`.
const DEFAULT_APPROVAL_TEXT: &str = "yes";

/// A project's rules, in file order.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// `autorespond.yaml rule N (match: "…")`, what the answer records as who answered.
    name: String,
    pattern: Regex,
    action: Action,
    message: Option<String>,
}

/// What a rule decides about a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer the question with `answer`; `rule` names the rule (for `AnsweredBy::Rule`).
    Answer { answer: Answer, rule: String },
    /// Leave the question to people; later rules are not tried.
    Queue { rule: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Approve,
    Reply,
    Queue,
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with a `rules:` list")]
struct RulesFile {
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(rename = "match")]
    pattern: String,
    action: Action,
    #[serde(default)]
    message: Option<String>,
}

/// The rules of the project at `cwd`: `Ok(None)` when it has no `.ratchet/autorespond.yaml`;
/// an error naming the file and what to fix when it cannot be read, is not YAML of the shape
/// above, has a field or action not listed there, a regex that does not compile, or a `reply`
/// rule without a `message`.
pub fn load(cwd: &Path) -> Result<Option<Rules>, String> {
    let path = cwd.join(RULES_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read the autorespond rules: {e}", path.display())),
    };
    Rules::parse(&text, &path).map(Some)
}

impl Rules {
    /// Rules from the text of the file at `path` (named in errors).
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Rules, String> {
        let shape = "expected `rules:` followed by a list of entries with `match: REGEX`, \
                     `action: approve | reply | queue` and optionally `message: TEXT`";
        // An empty file (or one of comments only) is no rules, not an error. The YAML error
        // says where (`rules[0].action: … at line 3 column 13`).
        let file: Option<RulesFile> =
            serde_yaml_ng::from_str(text).map_err(|e| format!("{}: {e}; {shape}", path.display()))?;
        let specs = file.map(|f| f.rules).unwrap_or_default();
        let rules =
            specs.into_iter().enumerate().map(|(i, spec)| Rule::new(i + 1, spec, path)).collect::<Result<_, _>>()?;
        Ok(Rules { rules })
    }

    /// What the first rule matching `title` decides for a question of `kind`; `None` when no
    /// rule matches (the question goes to people).
    pub fn decide(&self, kind: QuestionKind, title: &str) -> Option<Decision> {
        let rule = self.rules.iter().find(|r| r.pattern.is_match(title))?;
        Some(rule.decide(kind))
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the file has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Rule {
    fn new(number: usize, spec: RuleSpec, path: &Path) -> Result<Rule, String> {
        let name = format!("autorespond.yaml rule {number} (match: {:?})", spec.pattern);
        let at = |what: String| format!("{}: rule {number} (match: {:?}): {what}", path.display(), spec.pattern);
        let pattern = Regex::new(&spec.pattern).map_err(|e| {
            at(format!(
                "`match` is not a valid regex: {e}; fix the pattern \
                 (escape . ( ) [ ] * + ? with a backslash to match them literally)"
            ))
        })?;
        let message = spec.message.filter(|m| !m.trim().is_empty());
        if spec.action == Action::Reply && message.is_none() {
            return Err(at("action `reply` needs a `message`: the text sent as the answer".into()));
        }
        Ok(Rule { name, pattern, action: spec.action, message })
    }

    fn decide(&self, kind: QuestionKind) -> Decision {
        let rule = self.name.clone();
        let message = || self.message.clone().unwrap_or_else(|| DEFAULT_APPROVAL_TEXT.to_string());
        let answer = match (self.action, kind) {
            (Action::Queue, _) => return Decision::Queue { rule },
            (Action::Approve, QuestionKind::Ask) | (Action::Reply, QuestionKind::Ask) => Answer::Text(message()),
            (Action::Approve, QuestionKind::Permission | QuestionKind::PlanApproval) => {
                Answer::Approve { skip: vec![] }
            }
            (Action::Reply, QuestionKind::Permission | QuestionKind::PlanApproval) => {
                Answer::Reject { feedback: message() }
            }
        };
        Decision::Answer { answer, rule }
    }
}

/// The path of the rules file of the project at `cwd` (for messages that point people at it).
pub fn rules_path(cwd: &Path) -> PathBuf {
    cwd.join(RULES_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".ratchet")).unwrap();
        std::fs::write(rules_path(dir.path()), yaml).unwrap();
        dir
    }

    fn rules(yaml: &str) -> Rules {
        let dir = project(yaml);
        load(dir.path()).unwrap().expect("a rules file")
    }

    fn load_error(yaml: &str) -> String {
        let dir = project(yaml);
        let err = load(dir.path()).expect_err("the file is refused");
        let path = rules_path(dir.path()).display().to_string();
        assert!(err.contains(&path), "the error names {path}: {err}");
        err
    }

    const KINDS: [QuestionKind; 3] = [QuestionKind::Permission, QuestionKind::PlanApproval, QuestionKind::Ask];

    #[test]
    fn no_file_is_no_rules() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
    }

    #[test]
    fn an_empty_file_is_an_empty_set_of_rules() {
        assert!(rules("").is_empty());
        assert!(rules("# nothing yet\n").is_empty());
        assert!(rules("rules: []\n").is_empty());
    }

    #[test]
    fn approve_allows_permissions_and_plans_and_says_yes_to_asks() {
        let r = rules("rules:\n  - match: \"run the tests\"\n    action: approve\n");
        let rule = r#"autorespond.yaml rule 1 (match: "run the tests")"#.to_string();
        for kind in [QuestionKind::Permission, QuestionKind::PlanApproval] {
            let expected = Decision::Answer { answer: Answer::Approve { skip: vec![] }, rule: rule.clone() };
            assert_eq!(r.decide(kind, "may I run the tests?"), Some(expected), "{kind}");
        }
        let expected = Decision::Answer { answer: Answer::Text("yes".into()), rule };
        assert_eq!(r.decide(QuestionKind::Ask, "shall I run the tests?"), Some(expected));
    }

    #[test]
    fn approve_with_a_message_answers_asks_with_it() {
        let r = rules("rules:\n  - match: branch\n    action: approve\n    message: use main\n");
        let Some(Decision::Answer { answer, .. }) = r.decide(QuestionKind::Ask, "which branch?") else { panic!() };
        assert_eq!(answer, Answer::Text("use main".into()));
        let Some(Decision::Answer { answer, .. }) = r.decide(QuestionKind::Permission, "switch branch") else {
            panic!()
        };
        assert_eq!(answer, Answer::Approve { skip: vec![] });
    }

    #[test]
    fn reply_rejects_permissions_and_plans_with_the_message_and_answers_asks_with_it() {
        let r = rules("rules:\n  - match: \"(?i)push\"\n    action: reply\n    message: never push; open a PR\n");
        let rule = r#"autorespond.yaml rule 1 (match: "(?i)push")"#.to_string();
        for kind in [QuestionKind::Permission, QuestionKind::PlanApproval] {
            let feedback = "never push; open a PR".to_string();
            let expected = Decision::Answer { answer: Answer::Reject { feedback }, rule: rule.clone() };
            assert_eq!(r.decide(kind, "git Push origin"), Some(expected), "{kind}");
        }
        let expected = Decision::Answer { answer: Answer::Text("never push; open a PR".into()), rule };
        assert_eq!(r.decide(QuestionKind::Ask, "should I push?"), Some(expected));
    }

    #[test]
    fn queue_sends_the_question_to_people_for_every_kind() {
        let r = rules("rules:\n  - match: deploy\n    action: queue\n");
        for kind in KINDS {
            let expected = Decision::Queue { rule: r#"autorespond.yaml rule 1 (match: "deploy")"#.into() };
            assert_eq!(r.decide(kind, "deploy to production"), Some(expected), "{kind}");
        }
    }

    #[test]
    fn the_first_matching_rule_wins_and_queue_stops_later_rules() {
        let r = rules(
            "rules:\n  - match: production\n    action: queue\n  - match: deploy\n    action: approve\n  \
             - match: \"^cargo\"\n    action: approve\n",
        );
        let queued = Decision::Queue { rule: r#"autorespond.yaml rule 1 (match: "production")"#.into() };
        assert_eq!(r.decide(QuestionKind::Permission, "deploy to production"), Some(queued));
        let Some(Decision::Answer { rule, .. }) = r.decide(QuestionKind::Permission, "deploy to staging") else {
            panic!()
        };
        assert_eq!(rule, r#"autorespond.yaml rule 2 (match: "deploy")"#);
        assert_eq!(r.decide(QuestionKind::Permission, "run cargo test"), None, "anchored: no match");
        assert_eq!(r.decide(QuestionKind::Ask, "what now?"), None);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn bad_yaml_is_refused_with_the_path() {
        let err = load_error("rules:\n  - match: [unclosed\n");
        assert!(err.contains("expected `rules:`"), "{err}");
        let err = load_error("just some text\n");
        assert!(err.contains("expected a mapping with a `rules:` list"), "{err}");
    }

    #[test]
    fn an_unknown_action_is_refused_saying_which_actions_exist() {
        let err = load_error("rules:\n  - match: x\n    action: deny\n");
        assert!(err.contains("deny") && err.contains("approve"), "{err}");
        assert!(err.contains("rules[0].action"), "says where: {err}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = load_error("rules:\n  - match: x\n    action: approve\n    mesage: typo\n");
        assert!(err.contains("mesage"), "{err}");
        let err = load_error("rule:\n  - match: x\n    action: approve\n");
        assert!(err.contains("rule"), "{err}");
    }

    #[test]
    fn a_missing_match_or_action_is_refused() {
        assert!(load_error("rules:\n  - action: approve\n").contains("match"));
        assert!(load_error("rules:\n  - match: x\n").contains("action"));
    }

    #[test]
    fn a_bad_regex_is_refused_naming_the_rule() {
        let err =
            load_error("rules:\n  - match: ok\n    action: approve\n  - match: \"(unclosed\"\n    action: queue\n");
        assert!(err.contains("rule 2") && err.contains("regex"), "{err}");
    }

    #[test]
    fn reply_without_a_message_is_refused() {
        let err = load_error("rules:\n  - match: x\n    action: reply\n");
        assert!(err.contains("rule 1") && err.contains("message"), "{err}");
        load_error("rules:\n  - match: x\n    action: reply\n    message: \"  \"\n");
    }

    #[test]
    fn an_unreadable_file_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be cannot be read as one.
        std::fs::create_dir_all(rules_path(dir.path())).unwrap();
        let err = load(dir.path()).expect_err("refused");
        assert!(err.contains(&rules_path(dir.path()).display().to_string()), "{err}");
        assert!(err.contains("cannot read"), "{err}");
    }
}
