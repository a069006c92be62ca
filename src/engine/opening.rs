//! [`OpeningEngine`]: an [`EngineApi`] whose engine is still being opened.
//!
//! An editor starts `ratchet acp` and waits for the answer to `initialize`, which needs
//! nothing of the engine. Opening the engine (the SQLite store, its migrations, the stored
//! providers) takes a few milliseconds, so `ratchet acp` answers `initialize` at once and opens
//! the engine meanwhile; the first call that needs it waits for the open to finish. An engine
//! that cannot be opened fails every call with the open's error (the editor shows it), rather
//! than the process exiting before the editor heard anything.

use std::path::PathBuf;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, watch};
use tokio_util::task::TaskTracker;

use super::api::{EngineApi, EngineStatus, TurnStream};
use super::live::SessionEvent;
use super::mcp::McpServerConfig;
use super::store::{ProviderRecord, StoreError};
use super::tools::{Host, PlanEntry};
use super::{
    ChildSpec, ContentPart, EngineError, ListQuery, Mode, PermissionAnswer, ProviderSpec, ProviderTest, QuestionAnswer,
    SessionPage, SessionRecord, StoredMessage,
};

/// What the open ended with: the engine, or why there is none (the whole message).
type Opened = Result<Arc<dyn EngineApi>, Arc<str>>;

/// An engine being opened in the background; every call waits for it.
pub struct OpeningEngine {
    opened: watch::Receiver<Option<Opened>>,
    /// Owns the task that opens the engine.
    tasks: TaskTracker,
}

impl OpeningEngine {
    /// Starts `open` on a task of its own (so it runs whether or not anyone waits yet).
    pub fn start<F>(open: F) -> OpeningEngine
    where
        F: Future<Output = anyhow::Result<Arc<dyn EngineApi>>> + Send + 'static,
    {
        let (tx, opened) = watch::channel(None);
        let tasks = TaskTracker::new();
        tasks.spawn(async move {
            let result = open.await.map_err(|e| Arc::from(format!("{e:#}")));
            if let Err(e) = &result {
                tracing::error!("{e}");
            }
            let _ = tx.send(Some(result));
        });
        tasks.close();
        OpeningEngine { opened, tasks }
    }

    /// The engine once it is open, or the error every call reports.
    async fn engine(&self) -> Result<Arc<dyn EngineApi>, EngineError> {
        let mut opened = self.opened.clone();
        let outcome = match opened.wait_for(Option::is_some).await {
            Ok(value) => value.clone(),
            // The opening task is gone without a word: it panicked.
            Err(_) => Some(Err(Arc::from("the engine could not be opened (its task stopped); restart ratchet"))),
        };
        match outcome {
            Some(Ok(engine)) => Ok(engine),
            Some(Err(message)) => Err(EngineError::Store(StoreError::Open(message.to_string()))),
            None => unreachable!("wait_for returned before the value was set"),
        }
    }
}

/// Forwards a call to the engine once it is open; `$failed` is the answer without one.
macro_rules! forward {
    ($self:ident, |$engine:ident| $call:expr) => {
        async move {
            let $engine = $self.engine().await?;
            $call.await
        }
        .boxed()
    };
    ($self:ident, |$engine:ident| $call:expr, or $failed:expr) => {
        async move {
            match $self.engine().await {
                Ok($engine) => $call.await,
                Err(_) => $failed,
            }
        }
        .boxed()
    };
}

impl EngineApi for OpeningEngine {
    fn create_session(
        &self,
        cwd: PathBuf,
        dirs: Vec<PathBuf>,
        mcp: Vec<McpServerConfig>,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        forward!(self, |e| e.create_session(cwd, dirs, mcp))
    }

    fn open_session(
        &self,
        id: String,
        cwd: PathBuf,
        dirs: Vec<PathBuf>,
        mcp: Vec<McpServerConfig>,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        forward!(self, |e| e.open_session(id, cwd, dirs, mcp))
    }

    fn create_child_session(
        &self,
        parent: String,
        spec: ChildSpec,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        forward!(self, |e| e.create_child_session(parent, spec))
    }

    fn close_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>> {
        forward!(self, |e| e.close_session(id))
    }

    fn kill_session(&self, id: String) -> BoxFuture<'_, Result<bool, EngineError>> {
        forward!(self, |e| e.kill_session(id))
    }

    fn delete_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>> {
        forward!(self, |e| e.delete_session(id))
    }

    fn session(&self, id: String) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        forward!(self, |e| e.session(id))
    }

    fn list_sessions(&self, query: ListQuery) -> BoxFuture<'_, Result<SessionPage, EngineError>> {
        forward!(self, |e| e.list_sessions(query))
    }

    fn history(&self, id: String) -> BoxFuture<'_, Result<Vec<StoredMessage>, EngineError>> {
        forward!(self, |e| e.history(id))
    }

    fn plan(&self, id: String) -> BoxFuture<'_, Result<Option<Vec<PlanEntry>>, EngineError>> {
        forward!(self, |e| e.plan(id))
    }

    fn set_mode(&self, id: String, mode: String) -> BoxFuture<'_, Result<Mode, EngineError>> {
        forward!(self, |e| e.set_mode(id, mode))
    }

    fn set_model(&self, id: String, model: String) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        forward!(self, |e| e.set_model(id, model))
    }

    fn model_options(&self, current: String) -> BoxFuture<'_, Vec<String>> {
        forward!(self, |e| e.model_options(current), or vec![current])
    }

    fn send_message(
        &self,
        id: String,
        content: Vec<ContentPart>,
        host: Arc<dyn Host>,
    ) -> BoxFuture<'_, Result<TurnStream, EngineError>> {
        forward!(self, |e| e.send_message(id, content, host))
    }

    fn cancel(&self, id: String) -> BoxFuture<'_, bool> {
        // No engine, no turn to cancel.
        forward!(self, |e| e.cancel(id), or false)
    }

    fn answer_permission(&self, id: String, request_id: u64, answer: PermissionAnswer) -> BoxFuture<'_, bool> {
        forward!(self, |e| e.answer_permission(id, request_id, answer), or false)
    }

    fn answer_question(&self, id: String, request_id: u64, answer: QuestionAnswer) -> BoxFuture<'_, bool> {
        forward!(self, |e| e.answer_question(id, request_id, answer), or false)
    }

    fn subscribe(&self, id: String) -> BoxFuture<'_, Result<broadcast::Receiver<SessionEvent>, EngineError>> {
        forward!(self, |e| e.subscribe(id))
    }

    fn status(&self) -> BoxFuture<'_, Result<EngineStatus, EngineError>> {
        forward!(self, |e| e.status())
    }

    fn list_providers(&self) -> BoxFuture<'_, Result<Vec<ProviderRecord>, EngineError>> {
        forward!(self, |e| e.list_providers())
    }

    fn add_provider(&self, spec: ProviderSpec) -> BoxFuture<'_, Result<ProviderRecord, EngineError>> {
        forward!(self, |e| e.add_provider(spec))
    }

    fn remove_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderRecord, EngineError>> {
        forward!(self, |e| e.remove_provider(name))
    }

    fn set_default_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderRecord, EngineError>> {
        forward!(self, |e| e.set_default_provider(name))
    }

    fn test_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderTest, EngineError>> {
        forward!(self, |e| e.test_provider(name))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        async move {
            // An open still going on finishes first, so what it started is shut down too.
            self.tasks.wait().await;
            if let Ok(engine) = self.engine().await {
                engine.shutdown().await;
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_engine_that_cannot_open_fails_every_call_with_why() {
        let engine =
            OpeningEngine::start(async { Err(anyhow::anyhow!("cannot open the session store in /x: disk full")) });
        let err = engine.session("s".into()).await.unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(!engine.cancel("s".into()).await);
        assert_eq!(engine.model_options("m".into()).await, vec!["m".to_string()]);
        engine.shutdown().await;
    }
}
