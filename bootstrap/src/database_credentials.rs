//! The PostgreSQL read model's connect options, built in one place for every binary: `DATABASE_URL`,
//! with the `username` and `password` of the RDS-managed secret (`LEDGER_DATABASE_SECRET_ARN`, read
//! with GetSecretValue at start) in place of the URL's when a secret is configured.
//!
//! The password is never printed: [`DatabasePassword`] redacts itself, and no error of this module
//! carries the secret's text (a malformed SecretString is reported by its position, not its content).

use std::str::FromStr;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use sqlx::postgres::PgConnectOptions;

use crate::config::{DatabaseSecretArn, DatabaseUrl, LedgerConfig};

/// A database password. `Debug` and `Display` print `***`; only the driver sees the text.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabasePassword(String);

impl DatabasePassword {
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself, for the connect options only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabasePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabasePassword(***)")
    }
}

impl std::fmt::Display for DatabasePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The username and password of the read model's database, as the RDS-managed secret holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseCredentials {
    pub username: String,
    pub password: DatabasePassword,
}

/// Why a SecretString is not the `{"username": "...", "password": "..."}` of an RDS-managed secret.
/// Nothing here quotes the secret's text.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    #[error("the SecretString is not JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("the SecretString is JSON but not an object")]
    NotAnObject,
    #[error("the SecretString has no `{field}`")]
    MissingField { field: &'static str },
    #[error("the SecretString's `{field}` is not a non-empty string")]
    NotAString { field: &'static str },
}

impl DatabaseCredentials {
    /// Parses the SecretString of an RDS-managed secret (other keys, such as `engine` or `host` on
    /// secrets made by hand, are ignored: the URL says where the database is).
    pub fn from_secret_string(secret_string: &str) -> Result<Self, SecretFormatError> {
        // Through `Value`, not a derived struct: serde's type errors quote the offending value
        // (`invalid type: integer 123`), which could be the password.
        let value: serde_json::Value =
            serde_json::from_str(secret_string).map_err(|error| SecretFormatError::NotJson {
                line: error.line(),
                column: error.column(),
            })?;
        let object = value.as_object().ok_or(SecretFormatError::NotAnObject)?;
        let field = |field: &'static str| -> Result<String, SecretFormatError> {
            match object.get(field) {
                None => Err(SecretFormatError::MissingField { field }),
                Some(serde_json::Value::String(text)) if !text.is_empty() => Ok(text.clone()),
                Some(_) => Err(SecretFormatError::NotAString { field }),
            }
        };
        Ok(Self {
            username: field("username")?,
            password: DatabasePassword::new(field("password")?),
        })
    }
}

/// Why the read model's connect options could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseCredentialsError {
    /// The URL is printed without its credentials; sqlx's parse errors do not quote the URL.
    #[error("DATABASE_URL {url} is no PostgreSQL URL: {source}")]
    InvalidUrl {
        url: DatabaseUrl,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database secret {arn} does not exist (LEDGER_DATABASE_SECRET_ARN)")]
    SecretNotFound { arn: DatabaseSecretArn },
    #[error(
        "access to the database secret {arn} is denied: the role needs secretsmanager:GetSecretValue \
         on it (and kms:Decrypt on its key, if it has its own)"
    )]
    AccessDenied { arn: DatabaseSecretArn },
    #[error("the database secret {arn} holds no SecretString (a binary secret is not RDS's)")]
    NoSecretString { arn: DatabaseSecretArn },
    #[error("the database secret {arn} is malformed: {source}")]
    Malformed {
        arn: DatabaseSecretArn,
        #[source]
        source: SecretFormatError,
    },
    /// Any other failure of GetSecretValue (network, throttling past the retries, timeout, KMS),
    /// named by its error code when the service answered. The SDK's errors carry no secret value.
    #[error("cannot read the database secret {arn}: {code}")]
    Unreadable {
        arn: DatabaseSecretArn,
        code: String,
        /// Boxed: the SDK's error is large, and start-up errors travel by value.
        #[source]
        source: Box<SdkError<GetSecretValueError>>,
    },
}

/// The connect options of `url`, with `credentials` (when given) in place of its username and
/// password; host, port, database, `sslmode`, `sslrootcert` and the rest stay the URL's.
pub fn connect_options(
    url: &DatabaseUrl,
    credentials: Option<&DatabaseCredentials>,
) -> Result<PgConnectOptions, DatabaseCredentialsError> {
    let options = PgConnectOptions::from_str(url.expose_secret()).map_err(|source| {
        DatabaseCredentialsError::InvalidUrl {
            url: url.clone(),
            source,
        }
    })?;
    Ok(match credentials {
        Some(credentials) => options
            .username(&credentials.username)
            .password(credentials.password.expose_secret()),
        None => options,
    })
}

/// Reads the secret `arn` with GetSecretValue (its current version) and parses its SecretString.
/// Bounded by the client's retry and timeout configuration.
pub async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &DatabaseSecretArn,
) -> Result<DatabaseCredentials, DatabaseCredentialsError> {
    let output = client
        .get_secret_value()
        .secret_id(arn.as_str())
        .send()
        .await
        .map_err(|source| classify(arn, source))?;
    let secret_string = output
        .secret_string()
        .ok_or_else(|| DatabaseCredentialsError::NoSecretString { arn: arn.clone() })?;
    DatabaseCredentials::from_secret_string(secret_string).map_err(|source| {
        DatabaseCredentialsError::Malformed {
            arn: arn.clone(),
            source,
        }
    })
}

/// What an operator must do differs: a wrong ARN, a missing IAM permission, or a transient failure.
fn classify(
    arn: &DatabaseSecretArn,
    source: SdkError<GetSecretValueError>,
) -> DatabaseCredentialsError {
    let arn = arn.clone();
    match source.as_service_error() {
        Some(error) if error.is_resource_not_found_exception() => {
            DatabaseCredentialsError::SecretNotFound { arn }
        }
        Some(error) if error.code() == Some("AccessDeniedException") => {
            DatabaseCredentialsError::AccessDenied { arn }
        }
        service_error => {
            let code = service_error
                .and_then(ProvideErrorMetadata::code)
                .map_or_else(|| transport_failure(&source), str::to_owned);
            DatabaseCredentialsError::Unreadable {
                arn,
                code,
                source: Box::new(source),
            }
        }
    }
}

/// A failure before any answer of the service: its kind, for the one start-up log line.
fn transport_failure(source: &SdkError<GetSecretValueError>) -> String {
    match source {
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "no connection to Secrets Manager".to_owned(),
        SdkError::ConstructionFailure(_) => "the request could not be built".to_owned(),
        _ => "unexpected response".to_owned(),
    }
}

/// Where the credentials of a pool came from, for the refresher to read again
/// ([`crate::database_secret_refresh`]): the secret, the client that read it and what it held.
#[derive(Debug, Clone)]
pub struct SecretSource {
    pub client: aws_sdk_secretsmanager::Client,
    pub arn: DatabaseSecretArn,
    pub credentials: DatabaseCredentials,
}

/// The read model's connect options from `config`: `DATABASE_URL`, and when
/// `LEDGER_DATABASE_SECRET_ARN` is set, the secret's username and password, read now with a
/// Secrets Manager client of the shared AWS configuration (bounded retries and timeouts), and
/// the secret read, so that the caller can read it again.
///
/// `None` when no `DATABASE_URL` is configured.
pub async fn postgres_connect_options(
    config: &LedgerConfig,
) -> Result<Option<(PgConnectOptions, Option<SecretSource>)>, DatabaseCredentialsError> {
    let Some(url) = &config.database_url else {
        return Ok(None);
    };
    let source = match &config.database_secret {
        Some(arn) => {
            let client = aws_sdk_secretsmanager::Client::new(
                &ledger_dynamodb::config::aws_sdk_config().await,
            );
            let credentials = read_secret(&client, arn).await?;
            Some(SecretSource {
                client,
                arn: arn.clone(),
                credentials,
            })
        }
        None => None,
    };
    let options = connect_options(url, source.as_ref().map(|source| &source.credentials))?;
    Ok(Some((options, source)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> DatabaseUrl {
        LedgerConfig::from_lookup(|name| (name == "DATABASE_URL").then(|| text.to_owned()))
            .expect("a valid configuration")
            .database_url
            .expect("a database url")
    }

    fn credentials(username: &str, password: &str) -> DatabaseCredentials {
        DatabaseCredentials {
            username: username.to_owned(),
            password: DatabasePassword::new(password),
        }
    }

    #[test]
    fn an_rds_managed_secret_string_gives_its_username_and_password() {
        let parsed = DatabaseCredentials::from_secret_string(
            r#"{"username": "ledger", "password": "s3cr3t:@/?", "engine": "postgres"}"#,
        )
        .unwrap();
        assert_eq!(parsed, credentials("ledger", "s3cr3t:@/?"));
    }

    #[test]
    fn a_malformed_secret_string_names_what_is_wrong_without_quoting_it() {
        for (text, expected) in [
            ("hunter2", SecretFormatError::NotJson { line: 1, column: 1 }),
            (r#""hunter2""#, SecretFormatError::NotAnObject),
            (
                r#"{"password": "hunter2"}"#,
                SecretFormatError::MissingField { field: "username" },
            ),
            (
                r#"{"username": "ledger"}"#,
                SecretFormatError::MissingField { field: "password" },
            ),
            (
                r#"{"username": "ledger", "password": 2222}"#,
                SecretFormatError::NotAString { field: "password" },
            ),
            (
                r#"{"username": "", "password": "hunter2"}"#,
                SecretFormatError::NotAString { field: "username" },
            ),
        ] {
            let error = DatabaseCredentials::from_secret_string(text).unwrap_err();
            assert_eq!(error, expected, "{text}");
            let printed = format!("{error} {error:?}");
            assert!(
                !printed.contains("hunter2") && !printed.contains("2222"),
                "{printed}"
            );
        }
    }

    #[test]
    fn the_secret_replaces_the_urls_credentials_and_keeps_the_rest() {
        let url = url(
            "postgres://url-user:url-password@db.internal:6543/ledger?sslmode=verify-full&sslrootcert=/etc/rds.pem&application_name=ledger-api",
        );
        let options = connect_options(&url, Some(&credentials("ledger_admin", "rotated"))).unwrap();
        assert_eq!(options.get_username(), "ledger_admin");
        assert_eq!(options.get_host(), "db.internal");
        assert_eq!(options.get_port(), 6543);
        assert_eq!(options.get_database(), Some("ledger"));
        assert!(matches!(
            options.get_ssl_mode(),
            sqlx::postgres::PgSslMode::VerifyFull
        ));
        assert_eq!(options.get_application_name(), Some("ledger-api"));
        // No getter for the password: the options' Debug shows whether it is the secret's.
        let debug = format!("{options:?}");
        assert!(debug.contains("rotated") && !debug.contains("url-password"));
    }

    #[test]
    fn without_a_secret_the_url_is_used_as_it_is() {
        let options =
            connect_options(&url("postgres://ledger:from-url@127.0.0.1/ledger"), None).unwrap();
        assert_eq!(options.get_username(), "ledger");
        assert!(format!("{options:?}").contains("from-url"));
    }

    #[test]
    fn the_password_is_redacted_in_debug_and_display() {
        let credentials = credentials("ledger", "hunter2");
        let printed = format!(
            "{credentials:?} {} {:?}",
            credentials.password, credentials.password
        );
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("ledger") && printed.contains("***"),
            "{printed}"
        );
        assert_eq!(credentials.password.expose_secret(), "hunter2");
    }

    #[test]
    fn an_invalid_url_is_reported_without_its_password() {
        let error = connect_options(&url("postgres://ledger:hunter2@db:notaport/ledger"), None)
            .unwrap_err();
        assert!(
            matches!(error, DatabaseCredentialsError::InvalidUrl { .. }),
            "{error}"
        );
        let printed = format!("{error} {error:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
