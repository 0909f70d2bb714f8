//! Typed configuration, read from the environment (`LEDGER_*`), with the defaults of design §7.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ledger_http::auth::{JwksSource, LEEWAY_DEFAULT, LEEWAY_MAX};
use ledger_sqlite::GroupCommit;

/// Which event store the service writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStoreKind {
    /// The embedded SQLite file: `cargo run` needs nothing else.
    Sqlite,
    /// DynamoDB (or DynamoDB Local through `AWS_ENDPOINT_URL`), with the stream poller feeding the
    /// read model.
    Dynamodb,
}

/// Where the DynamoDB event store lives, when it is the event store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamodbConfig {
    /// `LEDGER_DYNAMODB_TABLE_PREFIX` (default none) prefixes the three default table names;
    /// `LEDGER_DYNAMODB_EVENTS_TABLE`, `..._IDEMPOTENCY_TABLE`, `..._SNAPSHOTS_TABLE` name each one.
    pub events_table: String,
    pub idempotency_table: String,
    pub snapshots_table: String,
    /// `LEDGER_SNAPSHOT_EVERY`, default 100: an account is snapshotted every this many events.
    pub snapshot_every: u64,
    /// `LEDGER_DYNAMODB_CREATE_TABLES`, default `false`: create missing tables at start-up (local use;
    /// production tables come from Pulumi).
    pub create_tables: bool,
}

/// Which read model the service projects into and queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadModelKind {
    /// One SQLite file: embedded mode, or DynamoDB with the stream poller in every API process (the
    /// single-node setup).
    Sqlite,
    /// PostgreSQL at `DATABASE_URL`, shared by every API process; the stream is projected by
    /// `ledger-projector` alone, so the API runs no poller (design §5). DynamoDB event store only.
    Postgres,
}

/// `DATABASE_URL`: a connection string that may carry a password, so it is never printed whole. Its
/// `Debug` and `Display` show only the scheme and host part after the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The full connection string, for the driver only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `postgres://user:secret@host:5432/db` prints as `postgres://***@host:5432/db`: what an
        // operator needs to tell databases apart, without the credentials.
        match (self.0.split_once("://"), self.0.rsplit_once('@')) {
            (Some((scheme, _)), Some((_, location))) => write!(f, "{scheme}://***@{location}"),
            (Some(_), None) => f.write_str(&self.0),
            (None, _) => f.write_str("<unparsed database url>"),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `LEDGER_DATABASE_SECRET_ARN`: the Secrets Manager secret (the RDS-managed one) holding the
/// PostgreSQL read model's `username` and `password`. An ARN names no secret value, so it prints whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSecretArn(String);

impl DatabaseSecretArn {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DatabaseSecretArn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How bearer tokens are verified (`LEDGER_AUTH_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The keys and the claims they must be checked with; `None` when no keys are configured
    /// (then `ledger-api` serves unauthenticated on a loopback address only, and the query Lambda
    /// refuses to start).
    pub keys: Option<AuthKeys>,
    /// `LEDGER_AUTH_LEEWAY_SECONDS`, default 30, at most 300: clock skew allowed on exp/nbf/iat.
    pub leeway: Duration,
}

/// Configured verification keys, with the issuer and audience required beside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthKeys {
    /// `LEDGER_AUTH_JWKS_FILE` or `LEDGER_AUTH_JWKS_URL` (exactly one).
    pub source: JwksSource,
    /// `LEDGER_AUTH_ISSUER`.
    pub issuer: String,
    /// `LEDGER_AUTH_AUDIENCE`.
    pub audience: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// `LEDGER_HTTP_ADDR`, default `127.0.0.1:8080`. Port 0 picks a free port (tests do).
    pub http_addr: SocketAddr,
    /// `LEDGER_SQLITE_PATH`, default `./data/ledger.db`.
    pub sqlite_path: PathBuf,
    /// How the SQLite writer groups its commits: `LEDGER_SQLITE_GROUP_COMMIT_MAX` (default 256, 1
    /// commits every write on its own) and `LEDGER_SQLITE_GROUP_COMMIT_WAIT_US` (default 0: a batch
    /// holds what queued up during the previous commit, and a lone write never waits).
    pub sqlite_group_commit: GroupCommit,
    /// `LEDGER_EVENT_STORE`, default `sqlite`.
    pub event_store: EventStoreKind,
    /// `LEDGER_READ_MODEL`, default `sqlite`.
    pub read_model: ReadModelKind,
    /// `DATABASE_URL`: the PostgreSQL read model, required when `read_model` is `Postgres`.
    pub database_url: Option<DatabaseUrl>,
    /// `LEDGER_DATABASE_SECRET_ARN`, default none: read at start, its username and password replace
    /// those of `database_url` (whose host, port, database and TLS settings are kept).
    pub database_secret: Option<DatabaseSecretArn>,
    /// `LEDGER_DATABASE_SECRET_REFRESH_SECONDS`, default 300, 30 to 3600: how often the secret is
    /// read again, so that new connections log in with a rotated password without a restart.
    pub database_secret_refresh: Duration,
    /// The DynamoDB tables, used when `event_store` is `Dynamodb`.
    pub dynamodb: DynamodbConfig,
    /// `LEDGER_HTTP_WORKERS`, default: the number of CPUs.
    pub http_workers: Option<usize>,
    /// `LEDGER_SHUTDOWN_TIMEOUT_SECS`, default 30: how long in-flight requests get to finish.
    pub shutdown_timeout: Duration,
    /// `LEDGER_COMMAND_ATTEMPTS_MAX`, default 10: attempts per command under write contention before
    /// answering `409 concurrency_conflict`.
    pub command_attempts_max: u32,
    /// `LEDGER_STATE_CACHE_ACCOUNTS`, default 100000 (0 disables): accounts whose state the command
    /// service keeps in memory, validated by version, so that a command on one reads nothing before
    /// its append however long its history.
    pub state_cache_accounts: usize,
    /// `LEDGER_READ_WAIT_TIMEOUT_MS`, default 5000: the longest a query with `min_sequence` waits.
    pub read_wait_timeout: Duration,
    /// `LEDGER_READY_LAG_MAX_MS`, default 10000: readiness fails while the projection lags more.
    pub ready_lag_max: Duration,
    /// `LEDGER_AUTH_*`: bearer token verification.
    pub auth: AuthConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable}=`{value}` is invalid: {reason}")]
    Invalid {
        variable: &'static str,
        value: String,
        reason: String,
    },
    #[error("{variable} is required: {reason}")]
    Missing {
        variable: &'static str,
        reason: &'static str,
    },
    #[error(
        "LEDGER_READ_MODEL=postgres needs LEDGER_EVENT_STORE=dynamodb: embedded mode keeps events and read model in one SQLite file"
    )]
    PostgresNeedsDynamodb,
    #[error("set LEDGER_AUTH_JWKS_FILE or LEDGER_AUTH_JWKS_URL, not both")]
    TwoKeySources,
    #[error(
        "{variable} is set but no keys are: set LEDGER_AUTH_JWKS_FILE or LEDGER_AUTH_JWKS_URL \
         too, or unset it"
    )]
    AuthWithoutKeys { variable: &'static str },
    #[error("LEDGER_AUTH_JWKS_URL is invalid: {0}")]
    JwksUrl(ledger_http::auth::JwksError),
}

impl LedgerConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can supply variables without touching the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(lookup);
        let http_addr = vars.parsed(
            "LEDGER_HTTP_ADDR",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            |_| true,
            "expected host:port, e.g. 127.0.0.1:8080",
        )?;
        let sqlite_path = vars
            .get("LEDGER_SQLITE_PATH")
            .filter(|value| !value.is_empty())
            .map_or_else(|| PathBuf::from("./data/ledger.db"), PathBuf::from);
        let sqlite_group_commit = sqlite_group_commit(&vars)?;
        let event_store = vars.choice(
            "LEDGER_EVENT_STORE",
            &[
                ("sqlite", EventStoreKind::Sqlite),
                ("dynamodb", EventStoreKind::Dynamodb),
            ],
        )?;
        let (read_model, database_url) = read_model(&vars, event_store)?;
        let database_secret = database_secret(&vars)?;
        let database_secret_refresh = database_secret_refresh(&vars)?;
        let dynamodb = dynamodb_config(&vars)?;
        let http_workers = match vars.get("LEDGER_HTTP_WORKERS") {
            Some(_) => Some(vars.parsed(
                "LEDGER_HTTP_WORKERS",
                1,
                |n| (1..=256).contains(n),
                "expected 1 to 256",
            )?),
            None => None,
        };
        let shutdown_timeout = Duration::from_secs(vars.parsed(
            "LEDGER_SHUTDOWN_TIMEOUT_SECS",
            30,
            |n| *n <= 3600,
            "expected 0 to 3600",
        )?);
        let command_attempts_max = vars.parsed(
            "LEDGER_COMMAND_ATTEMPTS_MAX",
            10,
            |n| (1..=100).contains(n),
            "expected 1 to 100",
        )?;
        let state_cache_accounts = vars.parsed(
            "LEDGER_STATE_CACHE_ACCOUNTS",
            ledger_application::command_service::state_cache::DEFAULT_STATE_CACHE_ACCOUNTS,
            |n| *n <= 10_000_000,
            "expected 0 (no cache) to 10000000",
        )?;
        let read_wait_timeout = Duration::from_millis(vars.parsed(
            "LEDGER_READ_WAIT_TIMEOUT_MS",
            5000,
            |n| *n <= 60_000,
            "expected 0 to 60000",
        )?);
        let ready_lag_max = Duration::from_millis(vars.parsed(
            "LEDGER_READY_LAG_MAX_MS",
            10_000,
            |n| (1..=3_600_000).contains(n),
            "expected 1 to 3600000",
        )?);
        Ok(Self {
            http_addr,
            sqlite_path,
            sqlite_group_commit,
            event_store,
            read_model,
            database_url,
            database_secret,
            database_secret_refresh,
            dynamodb,
            http_workers,
            shutdown_timeout,
            command_attempts_max,
            state_cache_accounts,
            read_wait_timeout,
            ready_lag_max,
            auth: auth(&vars)?,
        })
    }
}

/// The DynamoDB tables (`LEDGER_DYNAMODB_*_TABLE`, each prefixed by `LEDGER_DYNAMODB_TABLE_PREFIX`),
/// how often a snapshot is taken and whether the tables are created at start.
fn dynamodb_config<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
) -> Result<DynamodbConfig, ConfigError> {
    let prefix = vars.get("LEDGER_DYNAMODB_TABLE_PREFIX").unwrap_or_default();
    Ok(DynamodbConfig {
        events_table: vars.table("LEDGER_DYNAMODB_EVENTS_TABLE", &prefix, "ledger_events")?,
        idempotency_table: vars.table(
            "LEDGER_DYNAMODB_IDEMPOTENCY_TABLE",
            &prefix,
            "ledger_idempotency",
        )?,
        snapshots_table: vars.table(
            "LEDGER_DYNAMODB_SNAPSHOTS_TABLE",
            &prefix,
            "ledger_snapshots",
        )?,
        snapshot_every: vars.parsed(
            "LEDGER_SNAPSHOT_EVERY",
            100,
            |n| (1..=100_000).contains(n),
            "expected 1 to 100000",
        )?,
        create_tables: vars.choice(
            "LEDGER_DYNAMODB_CREATE_TABLES",
            &[("false", false), ("true", true)],
        )?,
    })
}

/// `LEDGER_AUTH_*`: one key source, and then issuer and audience, or none of them at all.
fn auth<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<AuthConfig, ConfigError> {
    let set = |variable| vars.get(variable).filter(|value| !value.is_empty());
    let leeway_max = LEEWAY_MAX.as_secs();
    let leeway = Duration::from_secs(vars.parsed(
        "LEDGER_AUTH_LEEWAY_SECONDS",
        LEEWAY_DEFAULT.as_secs(),
        |seconds| *seconds <= leeway_max,
        "expected 0 to 300",
    )?);
    let source = match (set("LEDGER_AUTH_JWKS_FILE"), set("LEDGER_AUTH_JWKS_URL")) {
        (Some(_), Some(_)) => return Err(ConfigError::TwoKeySources),
        (Some(path), None) => Some(JwksSource::File(PathBuf::from(path))),
        (None, Some(url)) => Some(JwksSource::url(&url).map_err(ConfigError::JwksUrl)?),
        (None, None) => None,
    };
    let (issuer, audience) = (set("LEDGER_AUTH_ISSUER"), set("LEDGER_AUTH_AUDIENCE"));
    let Some(source) = source else {
        if issuer.is_some() {
            return Err(ConfigError::AuthWithoutKeys {
                variable: "LEDGER_AUTH_ISSUER",
            });
        }
        if audience.is_some() {
            return Err(ConfigError::AuthWithoutKeys {
                variable: "LEDGER_AUTH_AUDIENCE",
            });
        }
        return Ok(AuthConfig { keys: None, leeway });
    };
    let required = |value: Option<String>, variable| {
        value.ok_or(ConfigError::Missing {
            variable,
            reason: "tokens are checked against it whenever keys are configured",
        })
    };
    Ok(AuthConfig {
        keys: Some(AuthKeys {
            source,
            issuer: required(issuer, "LEDGER_AUTH_ISSUER")?,
            audience: required(audience, "LEDGER_AUTH_AUDIENCE")?,
        }),
        leeway,
    })
}

/// `LEDGER_SQLITE_GROUP_COMMIT_MAX` and `LEDGER_SQLITE_GROUP_COMMIT_WAIT_US`: how the SQLite writer
/// groups its commits.
fn sqlite_group_commit<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
) -> Result<GroupCommit, ConfigError> {
    Ok(GroupCommit {
        max_batch: vars.parsed(
            "LEDGER_SQLITE_GROUP_COMMIT_MAX",
            GroupCommit::DEFAULT_MAX_BATCH,
            |n| (1..=10_000).contains(n),
            "expected 1 to 10000",
        )?,
        max_wait: Duration::from_micros(vars.parsed(
            "LEDGER_SQLITE_GROUP_COMMIT_WAIT_US",
            0,
            |n| *n <= 100_000,
            "expected 0 to 100000",
        )?),
    })
}

/// `LEDGER_READ_MODEL` and `DATABASE_URL`: PostgreSQL only beside DynamoDB (embedded mode stays one
/// SQLite file), and only with a URL to reach it.
fn read_model<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
    event_store: EventStoreKind,
) -> Result<(ReadModelKind, Option<DatabaseUrl>), ConfigError> {
    let read_model = vars.choice(
        "LEDGER_READ_MODEL",
        &[
            ("sqlite", ReadModelKind::Sqlite),
            ("postgres", ReadModelKind::Postgres),
        ],
    )?;
    let database_url = vars
        .get("DATABASE_URL")
        .filter(|value| !value.is_empty())
        .map(DatabaseUrl);
    if read_model == ReadModelKind::Postgres {
        if event_store != EventStoreKind::Dynamodb {
            return Err(ConfigError::PostgresNeedsDynamodb);
        }
        if database_url.is_none() {
            return Err(ConfigError::Missing {
                variable: "DATABASE_URL",
                reason: "LEDGER_READ_MODEL=postgres reads and projects into that database",
            });
        }
    }
    Ok((read_model, database_url))
}

/// `LEDGER_DATABASE_SECRET_REFRESH_SECONDS`: not below 30 s (each read is a GetSecretValue call,
/// billed, for every task and Lambda environment), not above an hour (a rotated password must reach
/// the pool well before its connections of the old one are retired, 30 min after they opened).
fn database_secret_refresh<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(vars.parsed(
        "LEDGER_DATABASE_SECRET_REFRESH_SECONDS",
        300,
        |n| (30..=3600).contains(n),
        "expected 30 to 3600",
    )?))
}

/// `LEDGER_DATABASE_SECRET_ARN`: a Secrets Manager ARN (`arn:<partition>:secretsmanager:...`). A bare
/// secret name would work with GetSecretValue too, but the variable promises an ARN, and an ARN names
/// the account and region, so a wrong one fails here rather than as a missing secret.
fn database_secret<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
) -> Result<Option<DatabaseSecretArn>, ConfigError> {
    const VARIABLE: &str = "LEDGER_DATABASE_SECRET_ARN";
    let Some(value) = vars.get(VARIABLE).filter(|value| !value.is_empty()) else {
        return Ok(None);
    };
    let mut parts = value.splitn(6, ':');
    let valid = parts.next() == Some("arn")
        && parts.next().is_some_and(|partition| !partition.is_empty())
        && parts.next() == Some("secretsmanager")
        && parts
            .nth(2)
            .is_some_and(|resource| resource.starts_with("secret:"));
    if valid {
        Ok(Some(DatabaseSecretArn(value)))
    } else {
        Err(Vars::<F>::invalid(
            VARIABLE,
            &value,
            "expected a Secrets Manager ARN, arn:aws:secretsmanager:<region>:<account>:secret:<name>",
        ))
    }
}

/// Typed access to the variables, each failure naming the variable, its value and what was expected.
struct Vars<F>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn get(&self, variable: &str) -> Option<String> {
        (self.0)(variable)
    }

    fn invalid(variable: &'static str, value: &str, reason: &str) -> ConfigError {
        ConfigError::Invalid {
            variable,
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// `default` when unset; otherwise the parsed value, which must pass `valid`.
    fn parsed<T: std::str::FromStr>(
        &self,
        variable: &'static str,
        default: T,
        valid: impl Fn(&T) -> bool,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.get(variable) {
            None => Ok(default),
            Some(value) => value
                .parse::<T>()
                .ok()
                .filter(|parsed| valid(parsed))
                .ok_or_else(|| Self::invalid(variable, &value, expected)),
        }
    }

    /// One of `choices` by name; the first choice when unset.
    fn choice<T: Copy>(
        &self,
        variable: &'static str,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(value) = self.get(variable) else {
            return Ok(choices[0].1);
        };
        choices
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, choice)| *choice)
            .ok_or_else(|| {
                let names: Vec<_> = choices
                    .iter()
                    .map(|(name, _)| format!("`{name}`"))
                    .collect();
                Self::invalid(
                    variable,
                    &value,
                    &format!("expected {}", names.join(" or ")),
                )
            })
    }

    /// A DynamoDB table name: the variable, or `prefix` + `default`.
    fn table(
        &self,
        variable: &'static str,
        prefix: &str,
        default: &str,
    ) -> Result<String, ConfigError> {
        let name = self
            .get(variable)
            .unwrap_or_else(|| format!("{prefix}{default}"));
        let valid = (3..=255).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if valid {
            Ok(name)
        } else {
            Err(Self::invalid(
                variable,
                &name,
                "a DynamoDB table name is 3-255 of [A-Za-z0-9_.-]",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<LedgerConfig, ConfigError> {
        LedgerConfig::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn defaults_run_embedded_on_localhost() {
        let config = config(&[]).unwrap();
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.sqlite_path, PathBuf::from("./data/ledger.db"));
        assert_eq!(config.event_store, EventStoreKind::Sqlite);
        assert_eq!(config.read_model, ReadModelKind::Sqlite);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(config.ready_lag_max, Duration::from_secs(10));
        assert_eq!(config.dynamodb.events_table, "ledger_events");
        assert_eq!(config.dynamodb.snapshot_every, 100);
        assert_eq!(config.state_cache_accounts, 100_000);
        assert_eq!(config.auth.keys, None);
        assert_eq!(config.auth.leeway, Duration::from_secs(30));
        assert!(!config.dynamodb.create_tables);
        assert_eq!(config.sqlite_group_commit, GroupCommit::default());
    }

    #[test]
    fn dynamodb_tables_take_a_prefix_or_their_own_names() {
        let config = config(&[
            ("LEDGER_EVENT_STORE", "dynamodb"),
            ("LEDGER_DYNAMODB_TABLE_PREFIX", "test1_"),
            ("LEDGER_DYNAMODB_SNAPSHOTS_TABLE", "snaps"),
        ])
        .unwrap();
        assert_eq!(config.event_store, EventStoreKind::Dynamodb);
        assert_eq!(config.dynamodb.events_table, "test1_ledger_events");
        assert_eq!(
            config.dynamodb.idempotency_table,
            "test1_ledger_idempotency"
        );
        assert_eq!(config.dynamodb.snapshots_table, "snaps");
    }

    #[test]
    fn variables_override_defaults() {
        let config = config(&[
            ("LEDGER_HTTP_ADDR", "0.0.0.0:9000"),
            ("LEDGER_SQLITE_PATH", "/tmp/x.db"),
            ("LEDGER_HTTP_WORKERS", "2"),
            ("LEDGER_SQLITE_GROUP_COMMIT_MAX", "1"),
            ("LEDGER_SQLITE_GROUP_COMMIT_WAIT_US", "250"),
        ])
        .unwrap();
        assert_eq!(config.http_addr.to_string(), "0.0.0.0:9000");
        assert_eq!(config.sqlite_path, PathBuf::from("/tmp/x.db"));
        assert_eq!(config.http_workers, Some(2));
        assert_eq!(
            config.sqlite_group_commit,
            GroupCommit {
                max_batch: 1,
                max_wait: Duration::from_micros(250),
            }
        );
    }

    #[test]
    fn a_group_commit_of_no_writes_is_refused() {
        let error = config(&[("LEDGER_SQLITE_GROUP_COMMIT_MAX", "0")]).unwrap_err();
        assert!(
            error.to_string().contains("LEDGER_SQLITE_GROUP_COMMIT_MAX"),
            "{error}"
        );
    }

    #[test]
    fn postgres_read_model_runs_on_dynamodb_with_a_database_url() {
        let config = config(&[
            ("LEDGER_EVENT_STORE", "dynamodb"),
            ("LEDGER_READ_MODEL", "postgres"),
            (
                "DATABASE_URL",
                "postgres://ledger:hunter2@db.internal:5432/ledger",
            ),
        ])
        .unwrap();
        assert_eq!(config.read_model, ReadModelKind::Postgres);
        let url = config.database_url.expect("database url");
        assert_eq!(
            url.expose_secret(),
            "postgres://ledger:hunter2@db.internal:5432/ledger"
        );
        assert_eq!(url.to_string(), "postgres://***@db.internal:5432/ledger");
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn a_database_secret_is_a_secrets_manager_arn() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf";
        let configured = config(&[("LEDGER_DATABASE_SECRET_ARN", arn)]).unwrap();
        assert_eq!(
            configured
                .database_secret
                .as_ref()
                .map(DatabaseSecretArn::as_str),
            Some(arn)
        );
        assert_eq!(config(&[]).unwrap().database_secret, None);
        assert_eq!(
            config(&[("LEDGER_DATABASE_SECRET_ARN", "")])
                .unwrap()
                .database_secret,
            None
        );
        for wrong in [
            "rds!db-1234",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/db",
            "arn::secretsmanager:eu-west-1:123456789012:secret:x",
            "arn:aws:secretsmanager:eu-west-1:123456789012",
        ] {
            let error = config(&[("LEDGER_DATABASE_SECRET_ARN", wrong)]).unwrap_err();
            assert!(
                error.to_string().contains("LEDGER_DATABASE_SECRET_ARN"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_database_secret_is_read_again_every_five_minutes_unless_configured() {
        let refresh = |value: &str| {
            config(&[("LEDGER_DATABASE_SECRET_REFRESH_SECONDS", value)])
                .map(|configured| configured.database_secret_refresh)
        };
        assert_eq!(
            config(&[]).unwrap().database_secret_refresh,
            Duration::from_mins(5)
        );
        assert_eq!(refresh("30").unwrap(), Duration::from_secs(30));
        assert_eq!(refresh("3600").unwrap(), Duration::from_hours(1));
        for wrong in ["29", "3601", "0", "-5", "5m"] {
            let error = refresh(wrong).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("LEDGER_DATABASE_SECRET_REFRESH_SECONDS"),
                "{error}"
            );
        }
    }

    #[test]
    fn postgres_read_model_refuses_the_embedded_event_store() {
        for event_store in [None, Some("sqlite")] {
            let mut vars = vec![
                ("LEDGER_READ_MODEL", "postgres"),
                ("DATABASE_URL", "postgres://ledger@127.0.0.1/ledger"),
            ];
            vars.extend(event_store.map(|kind| ("LEDGER_EVENT_STORE", kind)));
            let error = config(&vars).unwrap_err();
            assert!(
                matches!(error, ConfigError::PostgresNeedsDynamodb),
                "{error}"
            );
            assert!(error.to_string().contains("LEDGER_EVENT_STORE=dynamodb"));
        }
    }

    #[test]
    fn postgres_read_model_needs_a_database_url() {
        for url in [None, Some("")] {
            let mut vars = vec![
                ("LEDGER_EVENT_STORE", "dynamodb"),
                ("LEDGER_READ_MODEL", "postgres"),
            ];
            vars.extend(url.map(|url| ("DATABASE_URL", url)));
            let error = config(&vars).unwrap_err();
            assert!(error.to_string().contains("DATABASE_URL"), "{error}");
        }
    }

    #[test]
    fn sqlite_read_model_ignores_a_database_url_and_keeps_dynamodb_with_its_poller() {
        let config = config(&[
            ("LEDGER_EVENT_STORE", "dynamodb"),
            ("DATABASE_URL", "postgres://ledger@127.0.0.1/ledger"),
        ])
        .unwrap();
        assert_eq!(config.read_model, ReadModelKind::Sqlite);
        assert_eq!(config.event_store, EventStoreKind::Dynamodb);
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        for (variable, value) in [
            ("LEDGER_HTTP_ADDR", "localhost"),
            ("LEDGER_EVENT_STORE", "mongo"),
            ("LEDGER_DYNAMODB_EVENTS_TABLE", "no spaces"),
            ("LEDGER_SNAPSHOT_EVERY", "0"),
            ("LEDGER_DYNAMODB_CREATE_TABLES", "yes"),
            ("LEDGER_READ_MODEL", "excel"),
            ("LEDGER_HTTP_WORKERS", "0"),
            ("LEDGER_SHUTDOWN_TIMEOUT_SECS", "-1"),
            ("LEDGER_COMMAND_ATTEMPTS_MAX", "0"),
            ("LEDGER_STATE_CACHE_ACCOUNTS", "-1"),
            ("LEDGER_READ_WAIT_TIMEOUT_MS", "soon"),
            ("LEDGER_READY_LAG_MAX_MS", "0"),
        ] {
            let error = config(&[(variable, value)]).unwrap_err();
            assert!(error.to_string().contains(variable), "{error}");
        }
    }

    #[test]
    fn keys_come_from_one_source_with_issuer_and_audience() {
        let keys = config(&[
            ("LEDGER_AUTH_JWKS_FILE", "/etc/ledger/jwks.json"),
            ("LEDGER_AUTH_ISSUER", "https://issuer.example/"),
            ("LEDGER_AUTH_AUDIENCE", "ledger-api"),
            ("LEDGER_AUTH_LEEWAY_SECONDS", "300"),
        ])
        .expect("a valid configuration")
        .auth;
        assert_eq!(keys.leeway, Duration::from_mins(5));
        let keys = keys.keys.expect("keys configured");
        assert_eq!(
            keys.source,
            JwksSource::File(PathBuf::from("/etc/ledger/jwks.json"))
        );
        assert_eq!(keys.issuer, "https://issuer.example/");
        assert_eq!(keys.audience, "ledger-api");

        let by_url = config(&[
            ("LEDGER_AUTH_JWKS_URL", "https://issuer.example/jwks.json"),
            ("LEDGER_AUTH_ISSUER", "i"),
            ("LEDGER_AUTH_AUDIENCE", "a"),
        ])
        .expect("a valid configuration");
        assert!(matches!(
            by_url.auth.keys.map(|keys| keys.source),
            Some(JwksSource::Url(_))
        ));
    }

    #[test]
    fn incomplete_or_contradictory_auth_settings_are_refused() {
        let file = ("LEDGER_AUTH_JWKS_FILE", "/etc/ledger/jwks.json");
        let issuer = ("LEDGER_AUTH_ISSUER", "https://issuer.example/");
        let audience = ("LEDGER_AUTH_AUDIENCE", "ledger-api");
        for (vars, expected) in [
            (vec![file, audience], "LEDGER_AUTH_ISSUER is required"),
            (vec![file, issuer], "LEDGER_AUTH_AUDIENCE is required"),
            (
                vec![issuer, audience],
                "LEDGER_AUTH_ISSUER is set but no keys",
            ),
            (vec![audience], "LEDGER_AUTH_AUDIENCE is set but no keys"),
            (
                vec![
                    file,
                    ("LEDGER_AUTH_JWKS_URL", "https://x.example/"),
                    issuer,
                    audience,
                ],
                "not both",
            ),
            (
                vec![
                    ("LEDGER_AUTH_JWKS_URL", "http://issuer.example/jwks"),
                    issuer,
                    audience,
                ],
                "loopback host only",
            ),
            (
                vec![
                    file,
                    issuer,
                    audience,
                    ("LEDGER_AUTH_LEEWAY_SECONDS", "301"),
                ],
                "expected 0 to 300",
            ),
        ] {
            let error = config(&vars).expect_err("refused");
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
