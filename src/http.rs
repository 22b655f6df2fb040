//! The one place HTTP clients are built.
//!
//! reqwest is compiled with `rustls-no-provider` (the `ring` provider builds in
//! seconds where aws-lc takes minutes), so the provider has to be installed
//! once per process before any client exists, or building one panics. Every
//! client in infergate and its tests comes from [`client_builder`].

use std::sync::Once;

static PROVIDER: Once = Once::new();

/// Installs the rustls `ring` crypto provider for the process (idempotent).
pub fn install_crypto_provider() {
    PROVIDER.call_once(|| {
        // Err means another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder with the crypto provider in place and no proxy
/// surprises: a benchmark must talk to the server it names, directly.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().no_proxy().user_agent(concat!("infergate/", env!("CARGO_PKG_VERSION")))
}
