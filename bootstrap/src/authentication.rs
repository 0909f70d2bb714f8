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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ledger_http::auth::testkit;

    use super::*;
    use crate::config::LedgerConfig;
    use crate::startup::{Application, StartupError};

    fn no_keys() -> AuthConfig {
        AuthConfig {
            keys: None,
            leeway: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn without_keys_only_a_loopback_address_serves_unauthenticated() {
        for loopback in ["127.0.0.1:8080", "127.0.0.2:0", "[::1]:8080"] {
            let authentication = api_authentication(&no_keys(), loopback.parse().expect("addr"))
                .await
                .expect("loopback serves");
            assert!(
                matches!(authentication, Authentication::Disabled),
                "{loopback}"
            );
        }
        for exposed in ["0.0.0.0:8080", "10.0.0.5:8080", "[::]:8080"] {
            let error = api_authentication(&no_keys(), exposed.parse().expect("addr"))
                .await
                .expect_err("refused");
            assert!(
                matches!(error, AuthStartupError::NoKeysOffLoopback { .. }),
                "{exposed}: {error}"
            );
            assert!(
                error.to_string().contains("LEDGER_AUTH_JWKS_FILE"),
                "{error}"
            );
        }
    }

    #[tokio::test]
    async fn configured_keys_are_used_on_any_address_and_must_be_readable() {
        let keys = AuthKeys {
            source: ledger_http::auth::JwksSource::File(testkit::jwks_path()),
            issuer: testkit::TEST_ISSUER.to_owned(),
            audience: testkit::TEST_AUDIENCE.to_owned(),
        };
        let auth = AuthConfig {
            keys: Some(keys.clone()),
            leeway: Duration::from_secs(30),
        };
        let authentication = api_authentication(&auth, "0.0.0.0:8080".parse().expect("addr"))
            .await
            .expect("keys load");
        assert!(matches!(authentication, Authentication::Jwt(_)));
        let missing = AuthConfig {
            keys: Some(AuthKeys {
                source: ledger_http::auth::JwksSource::File("/nonexistent/jwks.json".into()),
                ..keys
            }),
            leeway: Duration::from_secs(30),
        };
        let error = api_authentication(&missing, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect_err("unreadable keys fail start-up");
        assert!(matches!(error, AuthStartupError::Keys(_)), "{error}");
    }

    #[tokio::test]
    async fn ledger_api_refuses_to_start_on_a_public_address_without_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ledger.db");
        let config = LedgerConfig::from_lookup(|name| match name {
            "LEDGER_HTTP_ADDR" => Some("0.0.0.0:0".to_owned()),
            "LEDGER_SQLITE_PATH" => path.to_str().map(str::to_owned),
            _ => None,
        })
        .expect("a valid configuration");
        let Err(error) = Application::build(&config).await else {
            panic!("ledger-api started on 0.0.0.0 without keys");
        };
        assert!(
            matches!(
                error,
                StartupError::Authentication(AuthStartupError::NoKeysOffLoopback { .. })
            ),
            "{error}"
        );
        assert!(!path.exists(), "nothing was opened before the refusal");
    }
}
