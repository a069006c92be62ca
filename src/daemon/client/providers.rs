//! The `provider.*` calls of the control API on a bare [`Client`], with the client's errors;
//! front ends use them through [`RemoteEngine`](super::RemoteEngine)'s `EngineApi`.

use super::{Client, ClientError};
use crate::daemon::protocol::{NameParams, method};
use crate::engine::store::ProviderRecord;
use crate::engine::{ProviderSpec, ProviderTest};

impl Client {
    /// Every stored provider entry, by name.
    pub async fn list_providers(&self) -> Result<Vec<ProviderRecord>, ClientError> {
        self.call(method::PROVIDER_LIST, ()).await
    }

    /// Validates and stores an entry (not as the default).
    pub async fn add_provider(&self, spec: ProviderSpec) -> Result<ProviderRecord, ClientError> {
        self.call(method::PROVIDER_ADD, spec).await
    }

    /// Removes an entry; returns it as it was.
    pub async fn remove_provider(&self, name: &str) -> Result<ProviderRecord, ClientError> {
        self.call(method::PROVIDER_REMOVE, NameParams { name: name.to_string() }).await
    }

    /// Makes an entry the default; the daemon's next turns use it.
    pub async fn set_default_provider(&self, name: &str) -> Result<ProviderRecord, ClientError> {
        self.call(method::PROVIDER_DEFAULT, NameParams { name: name.to_string() }).await
    }

    /// Sends one tiny request through the entry's provider, from the daemon (so with the
    /// daemon's environment for the key).
    pub async fn test_provider(&self, name: &str) -> Result<ProviderTest, ClientError> {
        self.call(method::PROVIDER_TEST, NameParams { name: name.to_string() }).await
    }
}
