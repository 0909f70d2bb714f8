//! `ledger-bench`: the ledger's benchmark. Runs workloads A-F in this process (the real command
//! service on a real SQLite file) and over HTTP (the `ledger-api` binary beside this one) and prints
//! one table per workload. A measurement, not a test: figures taken while other work shares the
//! cores mean little. `scripts/bench.sh` builds and runs it; `--help` lists the flags.

mod bounded;
mod history;
mod lag;
mod ledger;
mod options;
mod stats;
mod workloads;

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::options::{Options, Parsed};
use crate::stats::Table;
use crate::workloads::{Bench, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match options::parse(&args) {
        Ok(Parsed::Help) => {
            println!("{}", options::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(options)) => match run(&options).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("ledger-bench: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("ledger-bench: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(options: &Options) -> Result<(), String> {
    let mut bench = Bench::new(Settings {
        seconds: options.seconds,
        rebuild_events: options.rebuild_events,
        histories: options.histories.clone(),
        lag_rate: options.lag_rate,
    })?;
    let modes = &options.modes;
    println!(
        "ledger-bench: workloads {}, {} s a run, modes {}",
        options.workloads.iter().collect::<String>(),
        options.seconds,
        modes
            .iter()
            .map(|mode| mode.label())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut tables = Vec::new();
    for workload in &options.workloads {
        let table = match workload {
            'A' => bench.uniform_deposits(modes).await,
            'B' => bench.hot_account(modes).await,
            'C' => bench.history_cost(modes).await,
            'D' => bench.transfers(modes).await,
            'E' => bench.rebuild(modes).await,
            _ => bench.projection_lag(modes).await,
        };
        println!("\n{}", table.render());
        tables.push(table);
    }
    if let Some(path) = &options.json {
        let document = json!({
            "seconds": options.seconds,
            "workloads": tables.iter().map(table_json).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}

/// A table as JSON: its title, each row as an object keyed by the header, its notes.
fn table_json(table: &Table) -> Value {
    let rows: Vec<Value> = table
        .rows()
        .iter()
        .map(|row| {
            let cells = table
                .header()
                .iter()
                .zip(row)
                .map(|(name, cell)| (name.clone(), Value::String(cell.clone())));
            Value::Object(cells.collect())
        })
        .collect();
    json!({"title": table.title(), "rows": rows, "notes": table.notes()})
}
