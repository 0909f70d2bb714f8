//! The command line: which workloads, how long, which modes, how big the rebuild, where the JSON goes.

use std::path::PathBuf;

use crate::ledger::Mode;

pub const USAGE: &str =
    "usage: ledger-bench [--workloads A,B,C,D,E,F] [--seconds N] [--mode in-process|http|both]
                    [--rebuild-events N] [--histories 10,1000,100000] [--lag-rate N] [--json FILE]

Measures the ledger on throwaway SQLite files (synchronous=FULL, as in production), in this
process through the real CommandService and over HTTP against the `ledger-api` binary found beside
this one, and prints one table per workload:
  A  uniform deposits of random amounts on random accounts among 1,000, 16 and 64 clients
  B  one hot account, 16 clients
  C  sequential deposits on accounts with --histories events (the cold first command apart)
  D  random transfers among 1,000 funded accounts, 16 clients
  E  rebuild and verify of a read model of --rebuild-events events (default 1000000)
  F  projection lag under paced (open-loop) deposits at 80% of A's best rate (or --lag-rate)

  --seconds N   length of each timed run (default 10)
  --mode M      in-process, http, or both (default both)
  --json FILE   also write every table as JSON to FILE";

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub workloads: Vec<char>,
    pub seconds: u64,
    pub modes: Vec<Mode>,
    pub rebuild_events: u64,
    pub histories: Vec<u64>,
    pub lag_rate: Option<u64>,
    pub json: Option<PathBuf>,
}

/// What the command line came to: options, or a request for the usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Run(Options),
    Help,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workloads: vec!['A', 'B', 'C', 'D', 'E', 'F'],
            seconds: 10,
            modes: vec![Mode::InProcess, Mode::Http],
            rebuild_events: 1_000_000,
            histories: vec![10, 1_000, 100_000],
            lag_rate: None,
            json: None,
        }
    }
}

pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if matches!(flag.as_str(), "--help" | "-h") {
            return Ok(Parsed::Help);
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        match flag.as_str() {
            "--workloads" => options.workloads = workloads(value)?,
            "--seconds" => options.seconds = positive(flag, value)?,
            "--mode" => options.modes = modes(value)?,
            "--rebuild-events" => options.rebuild_events = positive(flag, value)?,
            "--histories" => {
                options.histories = value
                    .split(',')
                    .map(|part| positive(flag, part.trim()))
                    .collect::<Result<_, _>>()?;
            }
            "--lag-rate" => options.lag_rate = Some(positive(flag, value)?),
            "--json" => options.json = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown flag {flag}\n\n{USAGE}")),
        }
    }
    Ok(Parsed::Run(options))
}

fn positive(flag: &str, value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(format!(
            "{flag} takes a positive whole number, not `{value}`"
        )),
    }
}

fn workloads(value: &str) -> Result<Vec<char>, String> {
    let mut chosen = Vec::new();
    for part in value.split(',') {
        let name = part.trim().to_ascii_uppercase();
        match name.as_str() {
            "A" | "B" | "C" | "D" | "E" | "F" => {
                let letter = name.chars().next().unwrap_or('A');
                if !chosen.contains(&letter) {
                    chosen.push(letter);
                }
            }
            _ => return Err(format!("unknown workload `{part}`: A, B, C, D, E or F")),
        }
    }
    // Always in alphabetical order: F paces itself on A's figure.
    chosen.sort_unstable();
    Ok(chosen)
}

fn modes(value: &str) -> Result<Vec<Mode>, String> {
    match value {
        "in-process" => Ok(vec![Mode::InProcess]),
        "http" => Ok(vec![Mode::Http]),
        "both" => Ok(vec![Mode::InProcess, Mode::Http]),
        _ => Err(format!("--mode is in-process, http or both, not `{value}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_choose_workloads_modes_and_sizes() {
        let parsed = parse(&args(
            "--workloads f,a,A --seconds 2 --mode http --rebuild-events 2000 --histories 10,100",
        ));
        let Ok(Parsed::Run(options)) = parsed else {
            panic!("parsed: {parsed:?}");
        };
        assert_eq!(options.workloads, vec!['A', 'F']);
        assert_eq!(options.seconds, 2);
        assert_eq!(options.modes, vec![Mode::Http]);
        assert_eq!(options.rebuild_events, 2_000);
        assert_eq!(options.histories, vec![10, 100]);
        assert_eq!(parse(&[]), Ok(Parsed::Run(Options::default())));
    }

    #[test]
    fn bad_flags_are_refused_with_a_reason() {
        assert!(parse(&args("--seconds 0")).is_err());
        assert!(parse(&args("--workloads G")).is_err());
        assert!(parse(&args("--mode fast")).is_err());
        assert!(parse(&args("--seconds")).is_err());
        assert!(parse(&args("--frobnicate 1")).is_err());
        assert_eq!(parse(&args("--help")), Ok(Parsed::Help));
    }
}
