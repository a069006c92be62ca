//! The team's message router: one bounded inbox per member, addressed by name or `*` (every
//! other member still taking work). A message to a full inbox is refused, not dropped
//! silently: the sender is told, so a chatty member slows down instead of growing memory.

use std::collections::{BTreeMap, VecDeque};

/// Messages waiting for one member at most. A member reads its whole inbox at the start of
/// each turn; a turn takes seconds, so a few dozen waiting means it is flooded.
pub const INBOX_CAPACITY: usize = 32;
/// Longest message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// The address of every other member.
pub const BROADCAST: &str = "*";

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("there is no member {to:?} taking messages; the members are: {members}")]
    Unknown { to: String, members: String },
    #[error("{to}'s inbox is full ({INBOX_CAPACITY} messages waiting); wait for it to answer")]
    Full { to: String },
    #[error("the message is {0} bytes; at most {MAX_MESSAGE_BYTES} fit: put long text on the blackboard")]
    TooLong(usize),
    #[error("there is no other member to send to")]
    Alone,
}

/// Every open inbox, by member name.
#[derive(Debug, Default)]
pub struct Router {
    inboxes: BTreeMap<String, VecDeque<String>>,
}

impl Router {
    /// Opens `member`'s inbox (a new member, or one added later).
    pub fn open(&mut self, member: &str) {
        self.inboxes.entry(member.to_string()).or_default();
    }

    /// Closes `member`'s inbox (it finished for good or was removed); what waited is returned.
    pub fn close(&mut self, member: &str) -> Vec<String> {
        self.inboxes.remove(member).map(Vec::from).unwrap_or_default()
    }

    /// Delivers `text` to `to` (a name or [`BROADCAST`]) as `[<label> from <from>] text`;
    /// returns who got it. A broadcast skips the sender and full inboxes (they are named in
    /// the error only if nobody got it).
    pub fn deliver(&mut self, label: &str, from: &str, to: &str, text: &str) -> Result<Vec<String>, RouteError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(RouteError::TooLong(text.len()));
        }
        let line = format!("[{label} from {from}] {text}");
        if to == BROADCAST {
            let targets: Vec<String> = self.inboxes.keys().filter(|k| *k != from).cloned().collect();
            if targets.is_empty() {
                return Err(RouteError::Alone);
            }
            let mut got = Vec::new();
            let mut full = None;
            for name in targets {
                let inbox = self.inboxes.get_mut(&name).expect("listed above");
                if inbox.len() >= INBOX_CAPACITY {
                    full = Some(name);
                    continue;
                }
                inbox.push_back(line.clone());
                got.push(name);
            }
            return match (got.is_empty(), full) {
                (true, Some(to)) => Err(RouteError::Full { to }),
                _ => Ok(got),
            };
        }
        let members = self.names().join(", ");
        let inbox = self.inboxes.get_mut(to).ok_or_else(|| RouteError::Unknown { to: to.to_string(), members })?;
        if inbox.len() >= INBOX_CAPACITY {
            return Err(RouteError::Full { to: to.to_string() });
        }
        inbox.push_back(line);
        Ok(vec![to.to_string()])
    }

    /// Puts `text` as it is in `member`'s open inbox (the task, a member's first message).
    pub fn deliver_raw(&mut self, member: &str, text: String) {
        if let Some(inbox) = self.inboxes.get_mut(member) {
            inbox.push_back(text);
        }
    }

    /// Takes everything waiting for `member`, oldest first.
    pub fn take(&mut self, member: &str) -> Vec<String> {
        self.inboxes.get_mut(member).map(|q| q.drain(..).collect()).unwrap_or_default()
    }

    /// Whether anything waits for `member`.
    pub fn has_mail(&self, member: &str) -> bool {
        self.inboxes.get(member).is_some_and(|q| !q.is_empty())
    }

    /// Members with an open inbox, by name.
    pub fn names(&self) -> Vec<String> {
        self.inboxes.keys().cloned().collect()
    }
}
