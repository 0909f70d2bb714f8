//! Load generator: drives a running `ledger-api` with concurrent deposits and transfers for a fixed
//! time and prints commands per second and latency percentiles. A measurement, not a test.
//!
//! `cargo run --release -p ledger-tests --example load -- <base-url> [concurrency] [seconds]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

const ACCOUNTS: usize = 100;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let client = reqwest::Client::new();
    let run = std::process::id();

    for i in 0..ACCOUNTS {
        let id = format!("load-{run}-{i}");
        let open =
            json!({"account_id": id, "owner": "Load", "kind": "CHECKING", "currency": "USD"});
        post(
            &client,
            &format!("{base}/v1/accounts"),
            &format!("open-{id}"),
            &open,
        )
        .await;
        let deposit = json!({"amount": "1000000.00"});
        post(
            &client,
            &format!("{base}/v1/accounts/{id}/deposits"),
            &format!("seed-{id}"),
            &deposit,
        )
        .await;
    }

    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (client, base, counter) = (client.clone(), base.clone(), Arc::clone(&counter));
        workers.spawn(async move {
            let mut latencies_us = Vec::new();
            let mut statuses = [0_u64; 6];
            let mut state = 0x2545_F491_4F6C_DD1D_u64 ^ (worker as u64 + 1);
            while Instant::now() < deadline {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let source = usize::try_from(state % ACCOUNTS as u64).unwrap_or(0);
                let target = (source
                    + 1
                    + usize::try_from((state >> 20) % (ACCOUNTS as u64 - 1)).unwrap_or(0))
                    % ACCOUNTS;
                let key = format!("k-{run}-{}", counter.fetch_add(1, Ordering::Relaxed));
                let started = Instant::now();
                let status = if state.is_multiple_of(2) {
                    let body = json!({"amount": "1.00"});
                    post(
                        &client,
                        &format!("{base}/v1/accounts/load-{run}-{source}/deposits"),
                        &key,
                        &body,
                    )
                    .await
                } else {
                    let body = json!({"source_account_id": format!("load-{run}-{source}"),
                        "target_account_id": format!("load-{run}-{target}"), "amount": "0.01"});
                    post(&client, &format!("{base}/v1/transfers"), &key, &body).await
                };
                latencies_us.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
                statuses[usize::from(status / 100).min(5)] += 1;
            }
            (latencies_us, statuses)
        });
    }
    let mut latencies = Vec::new();
    let mut statuses = [0_u64; 6];
    while let Some(done) = workers.join_next().await {
        let (worker_latencies, worker_statuses) = done.expect("worker");
        latencies.extend(worker_latencies);
        for (total, n) in statuses.iter_mut().zip(worker_statuses) {
            *total += n;
        }
    }
    latencies.sort_unstable();
    let percentile = |p: usize| {
        latencies
            .get(latencies.len() * p / 100)
            .copied()
            .unwrap_or(0)
    };
    let commands = latencies.len() as u64;
    println!(
        "{commands} commands in {seconds}s with {concurrency} clients: {} commands/s; \
         latency p50 {}us p99 {}us; 2xx {} 4xx {} 5xx {}",
        commands / seconds.max(1),
        percentile(50),
        percentile(99),
        statuses[2],
        statuses[4],
        statuses[5]
    );
}

async fn post(client: &reqwest::Client, url: &str, key: &str, body: &serde_json::Value) -> u16 {
    match client
        .post(url)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
    {
        Ok(response) => response.status().as_u16(),
        Err(_) => 599,
    }
}
