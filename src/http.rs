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

/// Whether `e` or one of its causes is an answer that is not valid HTTP
/// (hyper's parse errors: a response head over its buffer, a malformed
/// status line or header). Such a server did answer: it is not a connection
/// problem, and sending again would only repeat it.
pub fn is_malformed_response(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<hyper::Error>().is_some_and(|h| h.is_parse() || h.is_parse_status()) {
            return true;
        }
        cause = c.source();
    }
    false
}
