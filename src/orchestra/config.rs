//! The orchestra's part of `config.toml`:
//!
//! ```toml
//! [fleet]
//! max_workers = 4            # workers running at once, for the whole engine (1..=32)
//!
//! [model_routing]            # which stored provider entry and model runs a step
//! simple = "local/qwen3"     # "provider-entry/model", or just "provider-entry"
//! complex = "work/gpt-5"
//! review = "work/o3"
//!
//! [questions]
//! timeout_secs = 3600        # unset: a question waits until someone answers it
//!
//! [cron]
//! catch_up = "once"          # a run missed while nothing ran: "once" at start, or "skip"
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::cron::CatchUp;
use super::plan::Complexity;
use crate::engine::config::ConfigFile;

/// Workers running at once when `[fleet] max_workers` is not set.
pub const DEFAULT_MAX_WORKERS: usize = 4;
/// The most workers one engine runs at once, whatever the configuration says.
pub const MAX_WORKERS: usize = 32;

/// What the orchestra reads from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrchestraConfig {
    pub max_workers: usize,
    pub routing: Routing,
    /// `None`: no timeout (a question never answers itself).
    pub question_timeout: Option<Duration>,
    /// What a cron job that says nothing does with runs missed while nothing ran.
    pub cron_catch_up: CatchUp,
}

impl Default for OrchestraConfig {
    fn default() -> Self {
        OrchestraConfig {
            max_workers: DEFAULT_MAX_WORKERS,
            routing: Routing::default(),
            question_timeout: None,
            cron_catch_up: CatchUp::default(),
        }
    }
}

/// A stored provider entry and, optionally, a model of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub provider: String,
    pub model: Option<String>,
}

/// Routes by step complexity; a missing one uses the session's provider and model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub simple: Option<Route>,
    pub complex: Option<Route>,
    pub review: Option<Route>,
}

impl Routing {
    pub fn route(&self, complexity: Complexity) -> Option<&Route> {
        match complexity {
            Complexity::Simple => self.simple.as_ref(),
            Complexity::Complex => self.complex.as_ref(),
            Complexity::Review => self.review.as_ref(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FleetSection {
    max_workers: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RoutingSection {
    simple: Option<String>,
    complex: Option<String>,
    review: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct QuestionsSection {
    timeout_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CronSection {
    catch_up: Option<String>,
}

impl OrchestraConfig {
    /// Reads and checks the orchestra's sections; the error names the key and what to write.
    pub fn from_file(file: &ConfigFile) -> Result<OrchestraConfig, String> {
        let fleet: FleetSection = section(&file.fleet, "fleet")?;
        let routing: RoutingSection = section(&file.model_routing, "model_routing")?;
        let questions: QuestionsSection = section(&file.questions, "questions")?;
        let cron: CronSection = section(&file.cron, "cron")?;
        let cron_catch_up = match cron.catch_up {
            None => CatchUp::default(),
            Some(text) => CatchUp::parse(&text).map_err(|e| format!("[cron] catch_up in config.toml: {e}"))?,
        };
        let max_workers = match fleet.max_workers {
            None => DEFAULT_MAX_WORKERS,
            Some(n @ 1..=MAX_WORKERS) => n,
            Some(n) => {
                return Err(format!("[fleet] max_workers = {n} in config.toml: use a number from 1 to {MAX_WORKERS}"));
            }
        };
        let route = |key: &str, v: Option<String>| v.map(|v| parse_route(key, &v)).transpose();
        Ok(OrchestraConfig {
            max_workers,
            routing: Routing {
                simple: route("simple", routing.simple)?,
                complex: route("complex", routing.complex)?,
                review: route("review", routing.review)?,
            },
            question_timeout: questions.timeout_secs.filter(|s| *s > 0).map(Duration::from_secs),
            cron_catch_up,
        })
    }
}

fn section<T: for<'de> Deserialize<'de> + Default>(table: &Option<toml::Table>, name: &str) -> Result<T, String> {
    match table {
        None => Ok(T::default()),
        Some(t) => t.clone().try_into().map_err(|e| format!("[{name}] in config.toml: {e}")),
    }
}

fn parse_route(key: &str, value: &str) -> Result<Route, String> {
    let (provider, model) = match value.split_once('/') {
        Some((p, m)) => (p.trim(), Some(m.trim())),
        None => (value.trim(), None),
    };
    if provider.is_empty() || model.is_some_and(str::is_empty) {
        return Err(format!(
            "[model_routing] {key} = {value:?} in config.toml: write \"provider-entry/model\" (an entry of `ratchet provider list`)"
        ));
    }
    Ok(Route { provider: provider.to_string(), model: model.map(str::to_string) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<OrchestraConfig, String> {
        OrchestraConfig::from_file(&ConfigFile::parse(text).unwrap())
    }

    #[test]
    fn defaults_routes_and_bounds() {
        assert_eq!(parse("").unwrap(), OrchestraConfig::default());
        let c = parse("[fleet]\nmax_workers = 2\n[model_routing]\nsimple = \"local/qwen3\"\nreview = \"work\"\n[questions]\ntimeout_secs = 60\n").unwrap();
        assert_eq!(c.max_workers, 2);
        assert_eq!(
            c.routing.route(Complexity::Simple),
            Some(&Route { provider: "local".into(), model: Some("qwen3".into()) })
        );
        assert_eq!(c.routing.route(Complexity::Review), Some(&Route { provider: "work".into(), model: None }));
        assert_eq!(c.routing.route(Complexity::Complex), None);
        assert_eq!(c.question_timeout, Some(Duration::from_secs(60)));
        assert!(parse("[fleet]\nmax_workers = 0\n").unwrap_err().contains("from 1 to 32"));
        assert!(parse("[fleet]\nworkers = 3\n").unwrap_err().contains("[fleet]"));
        assert!(parse("[model_routing]\nsimple = \"x/\"\n").unwrap_err().contains("provider-entry/model"));
        assert_eq!(parse("[cron]\ncatch_up = \"skip\"\n").unwrap().cron_catch_up, CatchUp::Skip);
        assert!(parse("[cron]\ncatch_up = \"twice\"\n").unwrap_err().contains("[cron] catch_up"));
    }
}
