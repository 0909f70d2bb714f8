//! Wiring of the deployable ledger: typed configuration, telemetry and start-up. No business logic:
//! everything here only chooses adapters and hands them to the application's services.

pub mod admin;
pub mod authentication;
pub mod config;
pub mod database_credentials;
pub mod database_secret_refresh;
pub mod healthcheck;
pub mod lambda_loop;
pub mod lambda_projection;
pub mod lambda_query;
pub mod startup;
pub mod telemetry;

pub use config::LedgerConfig;
pub use startup::Application;
