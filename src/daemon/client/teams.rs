//! `team.start` on a bare [`Client`]: a team started in the daemon outlives the command (or
//! window) that started it.

use super::{Client, ClientError};
use crate::daemon::protocol::method;
use crate::orchestra::teams::{StartTeam, TeamRecord};

impl Client {
    /// Starts a team in the daemon; returns it as recorded (its id, its transcript).
    pub async fn start_team(&self, req: StartTeam) -> Result<TeamRecord, ClientError> {
        self.call(method::TEAM_START, req).await
    }
}
