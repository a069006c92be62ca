//! The permission modes a session runs in.
//!
//! Apart from the sessions open in this process (`open_session`): the store and the
//! permission policy need the modes, and must not depend on what an open session owns.

/// A permission mode: how much the agent may do without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Ask before writes and commands (the default).
    Ask,
    /// File edits are allowed; commands still ask.
    AcceptEdits,
    /// Read-only: the model proposes a plan.
    Plan,
    /// Never ask.
    Yolo,
}

impl Mode {
    /// Every mode, in the order editors should list them.
    pub const ALL: [Mode; 4] = [Mode::Ask, Mode::AcceptEdits, Mode::Plan, Mode::Yolo];

    /// The id used in the store and on the wire.
    pub fn id(self) -> &'static str {
        match self {
            Mode::Ask => "ask",
            Mode::AcceptEdits => "accept-edits",
            Mode::Plan => "plan",
            Mode::Yolo => "yolo",
        }
    }

    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ask => "Ask",
            Mode::AcceptEdits => "Accept edits",
            Mode::Plan => "Plan",
            Mode::Yolo => "Yolo",
        }
    }

    /// One line on what the mode does.
    pub fn description(self) -> &'static str {
        match self {
            Mode::Ask => "Ask before editing files or running commands",
            Mode::AcceptEdits => "Edit files without asking; ask before running commands",
            Mode::Plan => "Read-only: look around and propose a plan",
            Mode::Yolo => "Never ask: edit files and run commands freely",
        }
    }

    /// Parses an id.
    pub fn parse(id: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.id() == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip() {
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.id()), Some(m));
        }
        assert_eq!(Mode::parse("bogus"), None);
    }
}
