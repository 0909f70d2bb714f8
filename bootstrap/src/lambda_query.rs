//! The query Lambda's wiring: the shared configuration, the PostgreSQL pool, the query service and
//! the readiness checks, built once per execution environment (before the runtime loop), never per
//! invocation.

use std::sync::Arc;

use ledger_application::ports::HealthCheck;
use ledger_application::{DeadLetterCheck, FreshnessWait, QueryService};
use ledger_lambda::query::QueryFunctionState;

use crate::authentication::{AuthStartupError, lambda_verifier};
use crate::config::{LedgerConfig, ReadModelKind};
use crate::startup::{ReadSide, StartupError};

/// Why the query function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum QueryLambdaError {
    #[error(
        "the query Lambda serves the PostgreSQL read model only: set LEDGER_READ_MODEL=postgres \
         and DATABASE_URL (LEDGER_READ_MODEL is `sqlite`, a file no Lambda shares)"
    )]
    NotPostgres,
    #[error(transparent)]
    Authentication(#[from] AuthStartupError),
    /// The cause is in the message too: start-up's one log line must say what failed.
    #[error(transparent)]
    Startup(#[from] StartupError),
}

/// The function's state from `config`: the token verifier (keys required), a pool on `DATABASE_URL`
/// (not migrated: `ledger migrate` does that, once; opened as every binary opens it, with the
/// credentials of `LEDGER_DATABASE_SECRET_ARN` when set), the query service waiting at most
/// `LEDGER_READ_WAIT_TIMEOUT_MS` for a `min_sequence`, and readiness as `ledger-api` has it with
/// PostgreSQL, less the event store this function does not use: the read model answers and holds
/// no open dead letter.
pub async fn query_function_state(
    config: &LedgerConfig,
) -> Result<QueryFunctionState, QueryLambdaError> {
    // Checked first: `ReadSide::open` would create the SQLite file of another configuration.
    if config.read_model != ReadModelKind::Postgres {
        return Err(QueryLambdaError::NotPostgres);
    }
    // Before the pool: a function without keys must not serve, whatever else is configured.
    let verifier = lambda_verifier(&config.auth).await?;
    let ReadSide::Postgres(read_model) = ReadSide::open(config).await? else {
        return Err(QueryLambdaError::NotPostgres);
    };
    let queries = Arc::new(QueryService::new(
        Arc::new(read_model.clone()),
        FreshnessWait {
            timeout: config.read_wait_timeout,
            ..FreshnessWait::default()
        },
    ));
    let health_checks: Vec<Arc<dyn HealthCheck>> = vec![
        Arc::new(read_model.clone()),
        Arc::new(DeadLetterCheck::new(Arc::new(read_model))),
    ];
    Ok(QueryFunctionState::new(queries, health_checks, verifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> LedgerConfig {
        LedgerConfig::from_lookup(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
        .expect("a valid configuration")
    }

    #[tokio::test]
    async fn the_embedded_read_model_is_refused_with_what_to_set() {
        let error = query_function_state(&config(&[]))
            .await
            .expect_err("SQLite is not served");
        assert!(matches!(error, QueryLambdaError::NotPostgres), "{error}");
        assert!(error.to_string().contains("LEDGER_READ_MODEL=postgres"));
    }

    #[tokio::test]
    async fn without_keys_the_function_refuses_to_start() {
        let error = query_function_state(&config(&[
            ("LEDGER_EVENT_STORE", "dynamodb"),
            ("LEDGER_READ_MODEL", "postgres"),
            ("DATABASE_URL", "postgres://ledger@127.0.0.1:1/ledger"),
        ]))
        .await
        .expect_err("keys are required");
        assert!(
            matches!(
                error,
                QueryLambdaError::Authentication(AuthStartupError::NoKeysForLambda)
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("LEDGER_AUTH_JWKS_FILE"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_database_fails_start_up_without_printing_its_password() {
        let jwks = ledger_http::auth::testkit::jwks_path();
        let error = query_function_state(&config(&[
            ("LEDGER_EVENT_STORE", "dynamodb"),
            ("LEDGER_READ_MODEL", "postgres"),
            (
                "LEDGER_AUTH_JWKS_FILE",
                jwks.to_str().expect("a UTF-8 path"),
            ),
            (
                "LEDGER_AUTH_ISSUER",
                ledger_http::auth::testkit::TEST_ISSUER,
            ),
            (
                "LEDGER_AUTH_AUDIENCE",
                ledger_http::auth::testkit::TEST_AUDIENCE,
            ),
            // Port 1 on loopback: refused at once.
            (
                "DATABASE_URL",
                "postgres://ledger:hunter2@127.0.0.1:1/ledger",
            ),
        ]))
        .await
        .expect_err("nothing listens there");
        assert!(
            matches!(
                error,
                QueryLambdaError::Startup(StartupError::Postgres { .. })
            ),
            "{error}"
        );
        assert!(
            !format!("{error} {error:?}").contains("hunter2"),
            "{error:?}"
        );
    }
}
