//! The secret guard: removes known secret values (API keys, tokens, passwords) from anything a
//! tool returns before the model or the editor sees it.
//!
//! Secrets come from the environment captured at start-up (variables named `*_KEY`, `*_TOKEN`,
//! `*_SECRET`, `*_PASSWORD`) and from explicitly named ones. Each value is replaced by
//! `[REDACTED:NAME]` in one pass, longest value first, so a secret that contains another one is
//! never half-replaced. Short values (under [`MIN_SECRET_LEN`] chars) are ignored: they match
//! ordinary text far too often.

use std::collections::HashMap;
use std::fmt;

use regex::Regex;

pub use crate::engine::secret_env::is_secret_name;

/// Values shorter than this are not treated as secrets.
pub const MIN_SECRET_LEN: usize = 8;

/// A secret value; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
struct Hidden(String);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} chars>", self.0.chars().count())
    }
}

#[derive(Debug, Clone)]
struct Secret {
    name: String,
    value: Hidden,
}

/// Redacts secret values from text. `Debug` shows the names only.
#[derive(Debug, Default)]
pub struct Redactor {
    /// Longest value first.
    secrets: Vec<Secret>,
    /// Alternation of all values, longest first; `None` when there are none.
    pattern: Option<Matcher>,
}

/// The compiled matcher and the value → name map (kept out of `Debug`).
struct Matcher {
    regex: Regex,
    names: HashMap<String, String>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Matcher")
    }
}

impl Redactor {
    /// A redactor for these `(name, value)` pairs. Values shorter than [`MIN_SECRET_LEN`] are
    /// ignored; when two names share a value the first name is used.
    pub fn new(secrets: Vec<(String, String)>) -> Self {
        let mut kept: Vec<Secret> = Vec::new();
        for (name, value) in secrets {
            if value.chars().count() < MIN_SECRET_LEN || kept.iter().any(|s| s.value.0 == value) {
                continue;
            }
            kept.push(Secret { name, value: Hidden(value) });
        }
        // Stable sort: equal lengths keep their given order.
        kept.sort_by_key(|s| std::cmp::Reverse(s.value.0.len()));
        let pattern = Self::compile(&kept);
        Redactor { secrets: kept, pattern }
    }

    /// Keeps the values of variables whose names end in `_KEY`, `_TOKEN`, `_SECRET` or
    /// `_PASSWORD` (any case).
    pub fn from_env_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::from_env_vars_with(vars, &[])
    }

    /// Like [`Redactor::from_env_vars`], also keeping the variables named in `also` (e.g. a
    /// key variable the config file names), whatever their names look like.
    pub fn from_env_vars_with<I, K, V>(vars: I, also: &[&str]) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let secrets = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(name, _)| is_secret_name(name) || also.iter().any(|a| a.eq_ignore_ascii_case(name)))
            .collect();
        Self::new(secrets)
    }

    /// Names of the secrets this redactor hides, longest value first.
    pub fn names(&self) -> Vec<&str> {
        self.secrets.iter().map(|s| s.name.as_str()).collect()
    }

    /// True if there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Replaces every secret value in `text` with `[REDACTED:NAME]`.
    pub fn redact(&self, text: &str) -> String {
        let Some(m) = &self.pattern else {
            return text.to_string();
        };
        m.regex
            .replace_all(text, |caps: &regex::Captures<'_>| {
                let name = m.names.get(&caps[0]).map(String::as_str).unwrap_or("SECRET");
                format!("[REDACTED:{name}]")
            })
            .into_owned()
    }

    fn compile(secrets: &[Secret]) -> Option<Matcher> {
        if secrets.is_empty() {
            return None;
        }
        // Leftmost-first alternation in longest-first order: at any position the longest
        // secret that matches there wins.
        let alternation = secrets.iter().map(|s| regex::escape(&s.value.0)).collect::<Vec<_>>().join("|");
        let regex = regex::RegexBuilder::new(&alternation)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| tracing::warn!("cannot build the secret matcher: {e}"))
            .ok()?;
        let names = secrets.iter().map(|s| (s.value.0.clone(), s.name.clone())).collect();
        Some(Matcher { regex, names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn replaces_each_value_with_its_name() {
        let r = Redactor::new(pairs(&[("OPENAI_API_KEY", "sk-abcdef123456"), ("DB_PASSWORD", "hunter2hunter2")]));
        let out = r.redact("key=sk-abcdef123456 pw=hunter2hunter2 again sk-abcdef123456");
        assert_eq!(out, "key=[REDACTED:OPENAI_API_KEY] pw=[REDACTED:DB_PASSWORD] again [REDACTED:OPENAI_API_KEY]");
    }

    #[test]
    fn longest_value_wins_when_one_contains_another() {
        // Given shortest first on purpose.
        let r = Redactor::new(pairs(&[("SHORT_TOKEN", "abcdefgh"), ("LONG_TOKEN", "abcdefgh-ijklmnop")]));
        assert_eq!(r.names(), vec!["LONG_TOKEN", "SHORT_TOKEN"]);
        assert_eq!(r.redact("x abcdefgh-ijklmnop y abcdefgh z"), "x [REDACTED:LONG_TOKEN] y [REDACTED:SHORT_TOKEN] z");
    }

    #[test]
    fn short_and_duplicate_values_are_ignored() {
        let r = Redactor::new(pairs(&[("A_KEY", "1234567"), ("B_KEY", "samevalue1"), ("C_KEY", "samevalue1")]));
        assert_eq!(r.names(), vec!["B_KEY"]);
        assert_eq!(r.redact("1234567 samevalue1"), "1234567 [REDACTED:B_KEY]");
    }

    #[test]
    fn env_vars_are_picked_by_suffix_case_insensitively() {
        let vars = vec![
            ("OPENAI_API_KEY", "sk-live-000000000"),
            ("github_token", "ghp_1111111111"),
            ("My_Secret", "s3cr3t-s3cr3t"),
            ("DB_PASSWORD", "p4ssw0rd-long"),
            ("HOME", "/home/someone/x"),
            ("KEYBOARD", "not-a-secret-at-all"),
            ("SHORT_KEY", "tiny"),
            ("CUSTOM_CRED", "custom-credential"),
        ];
        let r = Redactor::from_env_vars(vars.clone());
        let mut names = r.names();
        names.sort();
        assert_eq!(names, vec!["DB_PASSWORD", "My_Secret", "OPENAI_API_KEY", "github_token"]);
        assert_eq!(r.redact("/home/someone/x"), "/home/someone/x");

        let r = Redactor::from_env_vars_with(vars, &["custom_cred"]);
        assert_eq!(r.redact("v=custom-credential"), "v=[REDACTED:CUSTOM_CRED]");
    }

    #[test]
    fn debug_hides_values() {
        let r = Redactor::new(pairs(&[("OPENAI_API_KEY", "sk-very-secret-value")]));
        let dbg = format!("{r:?}");
        assert!(dbg.contains("OPENAI_API_KEY"), "{dbg}");
        assert!(!dbg.contains("sk-very-secret-value"), "{dbg}");
        assert!(!dbg.contains("very-secret"), "{dbg}");
    }

    #[test]
    fn empty_redactor_is_identity_and_regex_chars_are_literal() {
        let r = Redactor::default();
        assert!(r.is_empty());
        assert_eq!(r.redact("a.b*c"), "a.b*c");
        let r = Redactor::new(pairs(&[("X_KEY", "a.b*c(d)+e")]));
        assert_eq!(r.redact("aXb*c(d)+e a.b*c(d)+e"), "aXb*c(d)+e [REDACTED:X_KEY]");
    }
}
