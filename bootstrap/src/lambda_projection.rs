//! Wiring of `ledger-projection-lambda`: the PostgreSQL read model and the projector, built once per
//! execution environment (before the runtime loop), from the same variables as the other
//! deployables. No checkpoints (the event source mapping owns the stream position) and no lease
//! (the mapping runs one batch per shard at a time).

use std::sync::Arc;

use ledger_application::ports::SystemClock;
use ledger_application::{ProjectionRetry, Projector};
use ledger_lambda::projection::ProjectionFunction;

use crate::config::{LedgerConfig, ReadModelKind};
use crate::startup::{ReadSide, StartupError};

/// Why the projection function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionLambdaError {
    #[error(
        "the projection Lambda projects into PostgreSQL only: set LEDGER_READ_MODEL=postgres, \
         LEDGER_EVENT_STORE=dynamodb and DATABASE_URL"
    )]
    NotPostgres,
    #[error(transparent)]
    Startup(#[from] StartupError),
}

/// The function over the configured PostgreSQL read model: one pool and one projector for every
/// invocation of this execution environment. The pool connects here, during the function's init
/// (a database that cannot be reached fails the init, which Lambda reports and retries), and is not
/// migrated (`ledger migrate` does that, once).
///
/// # Errors
/// When the configuration names another read model, or the database cannot be reached.
pub async fn projection_function(
    config: &LedgerConfig,
) -> Result<ProjectionFunction, ProjectionLambdaError> {
    // Checked first: `ReadSide::open` would create the SQLite file of another configuration.
    if config.read_model != ReadModelKind::Postgres {
        return Err(ProjectionLambdaError::NotPostgres);
    }
    let read_side = ReadSide::open(config).await?;
    Ok(ProjectionFunction::new(Projector::new(
        read_side.projection(),
        Arc::new(SystemClock),
        ProjectionRetry::default(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn another_read_model_is_refused_with_a_clear_error() {
        let config = LedgerConfig::from_lookup(|name| {
            (name == "LEDGER_EVENT_STORE").then(|| "dynamodb".to_owned())
        })
        .expect("a valid configuration");
        let error = projection_function(&config)
            .await
            .expect_err("SQLite is not a read model for the Lambda");
        assert!(
            matches!(error, ProjectionLambdaError::NotPostgres),
            "{error:?}"
        );
        assert!(error.to_string().contains("LEDGER_READ_MODEL=postgres"));
    }

    #[tokio::test]
    async fn a_postgres_configuration_builds_the_function() {
        let database = ledger_postgres::testkit::FreshDatabase::migrated().await;
        let url = database.url();
        let config = LedgerConfig::from_lookup(|name| match name {
            "LEDGER_EVENT_STORE" => Some("dynamodb".to_owned()),
            "LEDGER_READ_MODEL" => Some("postgres".to_owned()),
            "DATABASE_URL" => Some(url.clone()),
            _ => None,
        })
        .expect("a valid configuration");
        projection_function(&config)
            .await
            .expect("the function over the fresh database");
    }
}
