//! What front ends are shown of tool calls and plans: places in files, diffs and terminals,
//! plan entries. Apart from `tools` so that events (`event`) and the tool context can both
//! name them without an import cycle; `tools` re-exports them.

use std::path::PathBuf;

/// A place in a file the editor can follow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// Absolute path.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u32>,
}

/// Something the editor shows for a tool call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Display {
    /// Plain or Markdown text.
    Text(String),
    /// A whole-file change: `old` is `None` for a new file.
    Diff { path: PathBuf, old: Option<String>, new: String },
    /// Output lives in an editor terminal with this id.
    Terminal(String),
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanEntry {
    pub content: String,
    pub priority: PlanPriority,
    pub status: PlanStatus,
}

/// How much a plan step matters. Parsed once, when `update_plan` is called; stored plans and
/// the daemon wire carry the same lowercase names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanPriority {
    High,
    Medium,
    Low,
}

impl PlanPriority {
    /// Every priority, in the order the tool's schema and errors list them.
    pub const ALL: [PlanPriority; 3] = [PlanPriority::High, PlanPriority::Medium, PlanPriority::Low];

    /// The name the model sends (and the store keeps).
    pub fn as_str(self) -> &'static str {
        match self {
            PlanPriority::High => "high",
            PlanPriority::Medium => "medium",
            PlanPriority::Low => "low",
        }
    }
}

/// Where a plan step is. Parsed once, when `update_plan` is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Pending,
    InProgress,
    Completed,
}

impl PlanStatus {
    /// Every status, in the order the tool's schema and errors list them.
    pub const ALL: [PlanStatus; 3] = [PlanStatus::Pending, PlanStatus::InProgress, PlanStatus::Completed];

    /// The name the model sends (and the store keeps).
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Pending => "pending",
            PlanStatus::InProgress => "in_progress",
            PlanStatus::Completed => "completed",
        }
    }
}
