//! `ledger`: the admin tool. `ledger create-tables` provisions the DynamoDB tables (idempotently, for
//! local use; production tables come from Pulumi); `ledger migrate` brings the read model's schema up
//! to date (the SQLite file, or PostgreSQL at DATABASE_URL when LEDGER_READ_MODEL=postgres); `ledger
//! rebuild` replaces the read model with one replayed from the event store; `ledger verify` compares
//! the read model with the event store; `ledger dead-letters list` shows the projector's open dead
//! letters and `ledger dead-letters retry ID` redrives one after a fix.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use ledger_application::ports::{DeadLetterId, Projection, SystemClock};
use ledger_application::{ProjectionRetry, Projector};
use ledger_bootstrap::startup::{ReadSide, dynamo_tables};
use ledger_bootstrap::{LedgerConfig, admin, telemetry};

/// The most letters `dead-letters list` prints: an operator reads them; a flood says "rebuild".
const LISTED_LETTERS_MAX: usize = 1_000;

const USAGE: &str = "usage: ledger <command>

commands:
  create-tables   create the DynamoDB tables (events with its stream, idempotency with TTL,
                  snapshots) if they do not exist; names from LEDGER_DYNAMODB_*, endpoint and
                  region from the standard AWS_* variables
  migrate         create or upgrade the read model: the SQLite database at LEDGER_SQLITE_PATH,
                  or, with LEDGER_READ_MODEL=postgres, the PostgreSQL database at DATABASE_URL
  rebuild [--restart]
                  replay the whole event store in use into a fresh read model and swap it in for
                  the live one only once complete (queries never see a half-built model); resumes
                  after an interruption; `ledger rebuild --help` says more
  dead-letters list
                  the open dead letters of the read model in use, oldest first:
                  id, account, sequence, state (dead, or waiting behind another), reason, raw form
  dead-letters retry ID
                  after a fix, re-read dead letter ID's account from the event store in use
                  (LEDGER_EVENT_STORE), apply its events in order from the read model's last one,
                  and resolve the letters they cover (the ones that waited behind it too)
  verify          fold every account of the event store and compare it with the read model
                  (balance, status, last_sequence, transaction count and sum, daily closing
                  balances); prints each difference on its own line, then a summary; exits 0
                  when they agree, 1 on any difference, 3 when it could not finish";

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = telemetry::init("ledger");
    let code = run().await;
    telemetry.shutdown();
    code
}

async fn run() -> ExitCode {
    let command = std::env::args().nth(1);
    let config = match LedgerConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("invalid configuration: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command.as_deref() {
        Some("create-tables") => {
            let client = ledger_dynamodb::config::dynamodb_client().await;
            let tables = dynamo_tables(&config.dynamodb);
            ledger_dynamodb::tables::create_tables(&client, &tables)
                .await
                .map(|()| {
                    format!(
                        "tables ready: {}, {}, {}",
                        tables.events, tables.idempotency, tables.snapshots
                    )
                })
                .map_err(|e| e.to_string())
        }
        Some("migrate") => migrate(&config).await,
        Some("verify") => return admin::verify::verify_command(&config).await,
        Some("rebuild") => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            admin::rebuild::run(&config, &args).await
        }
        Some("dead-letters") => {
            let action = std::env::args().nth(2);
            let id = std::env::args().nth(3);
            match (action.as_deref(), id) {
                (Some("list"), None) => list_dead_letters(&config).await,
                (Some("retry"), Some(id)) => match id.parse::<u64>() {
                    Ok(id) => retry_dead_letter(&config, DeadLetterId::new(id)).await,
                    Err(_) => Err(format!("`{id}` is not a dead letter id (a number)")),
                },
                _ => {
                    eprintln!("{USAGE}");
                    return ExitCode::from(2);
                }
            }
        }
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn open_database(config: &LedgerConfig) -> Result<ReadSide, String> {
    ReadSide::open(config).await.map_err(|e| e.to_string())
}

/// Opening the SQLite file migrates it; PostgreSQL is migrated explicitly, here and only here.
async fn migrate(config: &LedgerConfig) -> Result<String, String> {
    let read_side = open_database(config).await?;
    let (migrated, schema) = match &read_side {
        ReadSide::Sqlite(_) => (Ok(()), ledger_sqlite::SCHEMA_VERSION),
        ReadSide::Postgres(read_model) => (
            read_model.migrate().await.map_err(|e| e.to_string()),
            ledger_postgres::SCHEMA_VERSION,
        ),
    };
    let closed = read_side.close().await.map_err(|e| e.to_string());
    migrated?;
    closed?;
    Ok(format!(
        "{} is at schema {schema}",
        read_side.describe(config)
    ))
}

async fn list_dead_letters(config: &LedgerConfig) -> Result<String, String> {
    let database = open_database(config).await?;
    let letters = database
        .projection()
        .dead_letters(LISTED_LETTERS_MAX)
        .await
        .map_err(|e| e.to_string());
    let closed = database.close().await.map_err(|e| e.to_string());
    let letters = letters?;
    closed?;
    if letters.is_empty() {
        return Ok("no open dead letters".to_owned());
    }
    let mut out = format!("{} open dead letter(s), oldest first:", letters.len());
    for stored in &letters {
        let letter = &stored.letter;
        let state = match letter.waiting_behind {
            Some(head) => format!("waiting behind {head}"),
            None => "dead".to_owned(),
        };
        let account = letter
            .account_id
            .as_ref()
            .map_or_else(|| "?".to_owned(), ToString::to_string);
        let sequence = letter
            .sequence
            .map_or_else(|| "?".to_owned(), |s| s.to_string());
        let _ = write!(
            out,
            "\n{id}\taccount={account}\tsequence={sequence}\tstate={state}\trecorded_at={at}\
             \n\treason: {reason}\n\traw: {raw}",
            id = stored.id,
            at = letter.recorded_at.to_rfc3339(),
            reason = letter.reason,
            raw = letter.raw,
        );
    }
    if letters.len() == LISTED_LETTERS_MAX {
        let _ = write!(
            out,
            "\n(the first {LISTED_LETTERS_MAX} only; so many usually means a rebuild is due)"
        );
    }
    Ok(out)
}

async fn retry_dead_letter(config: &LedgerConfig, id: DeadLetterId) -> Result<String, String> {
    let database = open_database(config).await?;
    let events = admin::event_source(config, &database).await?.store;
    let projection: Arc<dyn Projection> = database.projection();
    let projector = Projector::new(
        projection,
        Arc::new(SystemClock),
        ProjectionRetry::default(),
    );
    let redriven = projector.redrive(events.as_ref(), id).await;
    let closed = database.close().await.map_err(|e| e.to_string());
    let redriven = redriven.map_err(|e| e.to_string())?;
    closed?;
    Ok(format!(
        "dead letter {id} redriven: account {}, {} event(s) applied, {} letter(s) resolved, \
         last_sequence {}",
        redriven.account_id, redriven.applied, redriven.resolved, redriven.last_sequence
    ))
}
