//! `/team NAME task` in a chat: the team runs inside the prompting turn, its members children
//! of the chat's session, each shown as a live tool call of the turn; the turn's answer is
//! the team's summary, and cancelling the turn stops the team.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::StartTeam;
use crate::engine::SessionRecord;
use crate::engine::extension::TurnCommand;
use crate::engine::turn_scope::TurnScope;
use crate::orchestra::Orchestra;

/// The `/team` command, if `name` is it.
pub(crate) fn command(orchestra: &Orchestra, session: &SessionRecord, name: &str, args: &str) -> Option<TurnCommand> {
    if name != "team" {
        return None;
    }
    let (team, task) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    let (team, task) = (team.trim().to_string(), task.trim().to_string());
    let orchestra = orchestra.clone();
    let session = session.clone();
    Some(Box::new(move |scope: Arc<dyn TurnScope>, cancel: CancellationToken| {
        Box::pin(async move {
            if team.is_empty() || task.is_empty() {
                let known = super::config::available(&session.cwd, &orchestra.inner.home);
                return format!(
                    "Say which team and what it should do: `/team NAME task` (teams: {}).",
                    known.join(", ")
                );
            }
            let req = StartTeam {
                name: team,
                task,
                cwd: session.cwd.clone(),
                paths: session.additional_dirs.clone(),
                project: None,
                config_dir: None,
            };
            match orchestra.teams().run_in(req, &session.id, scope, cancel.child_token()).await {
                Ok(outcome) => outcome.summary,
                Err(why) => format!("The team did not start: {why}"),
            }
        })
    }))
}
