//! The TLS settings every provider's HTTP client shares, built once per process.
//!
//! reqwest's platform verifier reads and parses the system's root certificates
//! (`/etc/ssl/certs`) each time a client is built: a few milliseconds of CPU on the async
//! thread and a few hundred KiB per client. It was paid by the first `session/new` (when the
//! provider is chosen) and again by every client after it (issue 11). Now one
//! `rustls::ClientConfig` is built, on a blocking thread once the store is open ([`warm`]) or
//! on first use, and every client gets a clone (its parts are shared).

use std::sync::{Arc, OnceLock};

use super::ProviderError;
use super::http::install_crypto_provider;

static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();

/// The shared settings: the platform's roots through `rustls-platform-verifier` (what reqwest
/// itself uses), TLS 1.2 and 1.3, ALPN for HTTP/2 and HTTP/1.1.
pub fn client_config() -> Result<rustls::ClientConfig, ProviderError> {
    CONFIG
        .get_or_init(build)
        .clone()
        .map_err(|e| ProviderError::Config(format!("cannot set up TLS for the HTTP client: {e}")))
}

/// Builds the settings ahead of need, on a blocking thread, so the first session does not
/// wait for them. Call from within a tokio runtime; the task is short and owns nothing.
pub fn warm() {
    if CONFIG.get().is_none() {
        drop(tokio::task::spawn_blocking(|| CONFIG.get_or_init(build).is_ok()));
    }
}

fn build() -> Result<rustls::ClientConfig, String> {
    install_crypto_provider();
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .ok_or_else(|| "no TLS crypto provider is installed".to_string())?;
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| e.to_string())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        // rustls files every custom verifier under `dangerous`; this one is the platform's,
        // exactly what reqwest installs when left to itself.
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_config_is_shared_and_offers_h2_then_http1() {
        let a = client_config().expect("the platform's roots load");
        let b = client_config().unwrap();
        assert_eq!(a.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert!(Arc::ptr_eq(&a.crypto_provider().clone(), &b.crypto_provider().clone()), "built once, cloned");
    }
}
