//! The start rules of authentication: with keys configured, a verifier over them (start-up fails if
//! they cannot be read); without, `ledger-api` serves unauthenticated on a loopback address only,
//! saying so loudly, and refuses any other address. The query Lambda always needs keys.

use std::net::SocketAddr;
use std::sync::Arc;

use ledger_http::auth::{
    Authentication, JwksError, JwtVerifier, KeyRefreshPolicy, VerifierSettings,
};

use crate::config::{AuthConfig, AuthKeys};

/// Why authentication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthStartupError {
    #[error(
        "no token verification keys are configured and LEDGER_HTTP_ADDR={addr} is not a loopback \
         address: the ledger serves unauthenticated on loopback only. Set LEDGER_AUTH_JWKS_FILE or \
         LEDGER_AUTH_JWKS_URL with LEDGER_AUTH_ISSUER and LEDGER_AUTH_AUDIENCE, or listen on \
         127.0.0.1"
    )]
    NoKeysOffLoopback { addr: SocketAddr },
    #[error(
        "the query Lambda always verifies bearer tokens: set LEDGER_AUTH_JWKS_FILE or \
         LEDGER_AUTH_JWKS_URL with LEDGER_AUTH_ISSUER and LEDGER_AUTH_AUDIENCE"
    )]
    NoKeysForLambda,
    #[error(transparent)]
    Keys(#[from] JwksError),
}

/// A verifier over the configured keys, read once now.
pub async fn verifier(
    keys: &AuthKeys,
    leeway: std::time::Duration,
) -> Result<Arc<JwtVerifier>, JwksError> {
    let settings = VerifierSettings {
        issuer: keys.issuer.clone(),
        audience: keys.audience.clone(),
        leeway,
    };
    Ok(Arc::new(
        JwtVerifier::load(keys.source.clone(), settings, KeyRefreshPolicy::default()).await?,
    ))
}

/// How `ledger-api` listening on `addr` authenticates: the configured keys, or nothing on a
/// loopback address (with a warning at start), or a refusal to start.
pub async fn api_authentication(
    auth: &AuthConfig,
    addr: SocketAddr,
) -> Result<Authentication, AuthStartupError> {
    match &auth.keys {
        Some(keys) => Ok(Authentication::Jwt(verifier(keys, auth.leeway).await?)),
        None if addr.ip().is_loopback() => {
            tracing::warn!(
                %addr,
                "AUTHENTICATION IS OFF: no LEDGER_AUTH_JWKS_FILE or LEDGER_AUTH_JWKS_URL is set, so \
                 every request is served as the anonymous caller with every scope. This is allowed \
                 on a loopback address only; configure keys before listening anywhere else"
            );
            Ok(Authentication::Disabled)
        }
        None => Err(AuthStartupError::NoKeysOffLoopback { addr }),
    }
}

/// The query Lambda's verifier: keys are required.
pub async fn lambda_verifier(auth: &AuthConfig) -> Result<Arc<JwtVerifier>, AuthStartupError> {
    let keys = auth
        .keys
        .as_ref()
        .ok_or(AuthStartupError::NoKeysForLambda)?;
    Ok(verifier(keys, auth.leeway).await?)
}
