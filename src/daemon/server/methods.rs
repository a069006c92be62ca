//! The control API's request/response methods: one small handler per [`EngineApi`] call,
//! plus `daemon.*`. Subscriptions are in `turns`.
//!
//! Sessions are shared: two windows may open the same one. `session.close` from one
//! connection therefore closes the session in the engine (which cancels its turn) only when
//! no other connection has it open; `session.kill` and `session.delete` close it regardless
//! (every connection's hold is dropped first). Every handler goes through the engine's face
//! ([`EngineApi`]), never its store.
//! A connection that ends without closing its sessions is handled in `holders`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{ConnectionId, Extensions, RpcModule};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::engine_error::engine;
use super::{State, holders, turns};
use crate::daemon::protocol::{
    self, AnswerParams, ChildParams, CreateParams, Health, HostReplyParams, IdParams, ModelOptionsParams, NameParams,
    OpenParams, QuestionAnswerParams, SetParams, method,
};
use crate::engine::{EngineApi, ListQuery, ProviderSpec};

/// Gives the `daemon.shutdown`/`daemon.reload` reply time to leave before connections close.
const STOP_REPLY_DELAY: Duration = Duration::from_millis(50);

/// Every method and subscription of the control API, bound to `state`.
pub(super) fn module(state: Arc<State>) -> Result<RpcModule<State>, RegisterMethodError> {
    let mut m = RpcModule::from_arc(state);
    m.register_async_method(method::HEALTH, |_, s, _| async move { health(&s).await })?;
    m.register_async_method(method::SHUTDOWN, |_, s, _| async move { stop_soon(&s, false) })?;
    m.register_async_method(method::RELOAD, |_, s, _| async move { stop_soon(&s, true) })?;

    add_conn(&mut m, method::CREATE, |s, conn, p: CreateParams| async move {
        let record = engine(EngineApi::create_session(&s.engine, p.cwd, p.dirs, p.mcp).await)?;
        hold(&s, &record.id, conn);
        Ok(record)
    })?;
    add_conn(&mut m, method::CREATE_CHILD, |s, conn, p: ChildParams| async move {
        let record = engine(EngineApi::create_child_session(&s.engine, p.parent, p.spec).await)?;
        hold(&s, &record.id, conn);
        Ok(record)
    })?;
    add_conn(&mut m, method::OPEN, |s, conn, p: OpenParams| async move {
        let record = engine(EngineApi::open_session(&s.engine, p.id, p.cwd, p.dirs, p.mcp).await)?;
        hold(&s, &record.id, conn);
        Ok(record)
    })?;
    add_conn(&mut m, method::CLOSE, |s, conn, p: IdParams| async move {
        if s.holders.release(&p.id, conn) {
            engine(EngineApi::close_session(&s.engine, p.id).await)
        } else {
            tracing::debug!(session = %p.id, "closed by one client; still open for another");
            engine(EngineApi::session(&s.engine, p.id).await.map(|_| ()))
        }
    })?;
    add(&mut m, method::GET, |s, p: IdParams| async move { engine(EngineApi::session(&s.engine, p.id).await) })?;
    add(&mut m, method::LIST, |s, p: ListQuery| async move { engine(EngineApi::list_sessions(&s.engine, p).await) })?;
    add(&mut m, method::HISTORY, |s, p: IdParams| async move { engine(EngineApi::history(&s.engine, p.id).await) })?;
    add(&mut m, method::PLAN, |s, p: IdParams| async move { engine(EngineApi::plan(&s.engine, p.id).await) })?;
    add(&mut m, method::SET_MODE, |s, p: SetParams| async move {
        engine(EngineApi::set_mode(&s.engine, p.id, p.value).await)
    })?;
    add(&mut m, method::SET_MODEL, |s, p: SetParams| async move {
        engine(EngineApi::set_model(&s.engine, p.id, p.value).await)
    })?;
    add(&mut m, method::DELETE, |s, p: IdParams| async move {
        s.holders.forget(&p.id);
        engine(EngineApi::delete_session(&s.engine, p.id).await)
    })?;
    add(&mut m, method::KILL, |s, p: IdParams| async move {
        s.holders.forget(&p.id);
        engine(EngineApi::kill_session(&s.engine, p.id).await)
    })?;
    add(&mut m, method::MODEL_OPTIONS, |s, p: ModelOptionsParams| async move {
        Ok(EngineApi::model_options(&s.engine, p.current).await)
    })?;
    add(&mut m, method::CANCEL, |s, p: IdParams| async move { Ok(EngineApi::cancel(&s.engine, p.id).await) })?;
    add(&mut m, method::ANSWER_PERMISSION, |s, p: AnswerParams| async move {
        Ok(EngineApi::answer_permission(&s.engine, p.id, p.request_id, p.answer).await)
    })?;
    add(&mut m, method::ANSWER_QUESTION, |s, p: QuestionAnswerParams| async move {
        Ok(EngineApi::answer_question(&s.engine, p.id, p.request_id, p.answer).await)
    })?;
    add(&mut m, method::HOST_REPLY, |s, p: HostReplyParams| async move {
        if s.host_calls.reply(p.call_id, p.result) {
            Ok(())
        } else {
            Err(ErrorObjectOwned::owned(
                protocol::UNKNOWN_CALL,
                format!("host call {} is not waiting (answered, cancelled or timed out); drop the reply", p.call_id),
                None::<()>,
            ))
        }
    })?;
    add(&mut m, method::PROVIDER_LIST, |s, (): ()| async move { engine(EngineApi::list_providers(&s.engine).await) })?;
    add(&mut m, method::PROVIDER_ADD, |s, p: ProviderSpec| async move {
        engine(EngineApi::add_provider(&s.engine, p).await)
    })?;
    add(&mut m, method::PROVIDER_REMOVE, |s, p: NameParams| async move {
        engine(EngineApi::remove_provider(&s.engine, p.name).await)
    })?;
    add(&mut m, method::PROVIDER_DEFAULT, |s, p: NameParams| async move {
        engine(EngineApi::set_default_provider(&s.engine, p.name).await)
    })?;
    add(&mut m, method::PROVIDER_TEST, |s, p: NameParams| async move {
        engine(EngineApi::test_provider(&s.engine, p.name).await)
    })?;
    add(&mut m, method::TEAM_START, |s, p: crate::orchestra::teams::StartTeam| async move {
        let Some(orchestra) = &s.orchestra else {
            return Err(ErrorObjectOwned::owned(protocol::TEAM_REFUSED, "this daemon runs no teams", None::<()>));
        };
        orchestra.teams().start(p).await.map_err(|why| ErrorObjectOwned::owned(protocol::TEAM_REFUSED, why, None::<()>))
    })?;
    turns::register(&mut m)?;
    Ok(m)
}

/// Records `conn`'s hold on a session it just opened; if `conn` ended meanwhile, the
/// session is closed again unless someone else has it open.
fn hold(s: &Arc<State>, session: &str, conn: ConnectionId) {
    if !s.holders.hold(session, conn) && !s.holders.is_held(session) {
        holders::close_when_idle(s, vec![session.to_string()]);
    }
}

/// Registers a method whose params are one object of type `P`.
fn add<P, R, F, Fut>(m: &mut RpcModule<State>, name: &'static str, f: F) -> Result<(), RegisterMethodError>
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Clone + Send + 'static,
    F: Fn(Arc<State>, P) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ErrorObjectOwned>> + Send + 'static,
{
    m.register_async_method(name, move |params, state, _| {
        let f = f.clone();
        async move {
            let p: P = params.parse()?;
            f(state, p).await
        }
    })?;
    Ok(())
}

/// Registers a method that also needs the caller's connection.
fn add_conn<P, R, F, Fut>(m: &mut RpcModule<State>, name: &'static str, f: F) -> Result<(), RegisterMethodError>
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Clone + Send + 'static,
    F: Fn(Arc<State>, ConnectionId, P) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ErrorObjectOwned>> + Send + 'static,
{
    m.register_async_method(name, move |params, state, ext: Extensions| {
        let f = f.clone();
        async move {
            let p: P = params.parse()?;
            let conn = ext.get::<ConnectionId>().copied().unwrap_or_default();
            f(state, conn, p).await
        }
    })?;
    Ok(())
}

async fn health(s: &State) -> Result<Health, ErrorObjectOwned> {
    let status = engine(EngineApi::status(&s.engine).await)?;
    Ok(Health {
        version: s.info.version.clone(),
        protocol: protocol::PROTOCOL_VERSION,
        pid: s.info.pid,
        uptime_ms: u64::try_from(s.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        sessions: status.sessions,
        running_turns: status.running_turns,
        socket: s.info.socket.clone(),
    })
}

/// Fires shutdown or reload just after this reply is on its way.
fn stop_soon(s: &Arc<State>, reload: bool) -> Result<(), ErrorObjectOwned> {
    let token = if reload { s.control.reload.clone() } else { s.control.shutdown.clone() };
    tracing::info!(reload, "stop requested over the control API");
    s.tasks.spawn(async move {
        tokio::time::sleep(STOP_REPLY_DELAY).await;
        token.cancel();
    });
    Ok(())
}
