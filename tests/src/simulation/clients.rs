//! The virtual clients: each sends random commands of every type under fresh idempotency keys and
//! retries them with the same key at random moments — after an answer, after a transient error, and
//! while the first attempt is still running, sometimes to the second process — and some query the
//! read model with `min_sequence` waits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ledger_application::{
    CommandContext, CommandOutcome, CommandRequest, IdempotencyKey, PostedEvent, QueryError,
};
use ledger_domain::{
    AccountId, AccountKind, Amount, Currency, Description, FreezeReason, OverdraftLimit, OwnerName,
};
use rust_decimal::Decimal;
use tokio::task::JoinSet;

use super::world::{Answer, Attempt, World};

/// The accounts every client works on, so that commands collide: `hot-0`, `hot-1`, ... in USD and
/// one EUR account, which makes some transfers a currency mismatch.
pub fn hot_accounts(count: usize) -> Vec<(AccountId, Currency)> {
    let usd = Currency::parse("USD").expect("USD is supported");
    let eur = Currency::parse("EUR").expect("EUR is supported");
    (0..count)
        .map(|index| (account(&format!("hot-{index}")), usd))
        .chain(std::iter::once((account("hot-eur"), eur)))
        .collect()
}

fn account(text: &str) -> AccountId {
    AccountId::parse(text).expect("a simulation account id is valid")
}

fn cents(value: u64) -> Amount {
    let minor = i64::try_from(value).expect("simulation amounts are small");
    Amount::new(Decimal::new(minor, 2)).expect("a positive amount of cents")
}

/// What one client remembers: the sequences its own commands reported, for `min_sequence` queries.
#[derive(Debug)]
struct ClientState {
    client: usize,
    last_sequence: BTreeMap<AccountId, u64>,
}

impl ClientState {
    fn remember(&mut self, world: &World, outcome: &CommandOutcome) {
        let posted: Vec<&PostedEvent> = match outcome {
            CommandOutcome::AccountOpened { event } => {
                world.add_known_account(&event.account_id);
                vec![event]
            }
            CommandOutcome::MoneyPosted { event } | CommandOutcome::StatusChanged { event, .. } => {
                vec![event]
            }
            CommandOutcome::Transferred { source, target, .. } => vec![source, target],
        };
        for event in posted {
            let known = self
                .last_sequence
                .entry(event.account_id.clone())
                .or_insert(0);
            *known = (*known).max(event.sequence);
        }
    }
}

/// Runs one client's `operations`: the first opens a hot account, the rest are random.
pub async fn run_client(world: Arc<World>, client: usize, operations: u64) {
    let mut state = ClientState {
        client,
        last_sequence: BTreeMap::new(),
    };
    let hot = hot_accounts(world.config.hot_accounts);
    for operation in 0..operations {
        let key = format!("c{client}-o{operation}");
        if operation == 0 {
            let (account_id, currency) = hot[client % hot.len()].clone();
            let request = open_request(&world, client, Some(account_id), currency);
            command(&world, &mut state, &key, request).await;
        } else if world.rng.chance(world.config.behaviour.queries) {
            query(&world, &mut state).await;
        } else {
            let request = random_request(&world, client, operation, &hot);
            command(&world, &mut state, &key, request).await;
        }
        // Think time, so that clients drift apart and meet in ever new interleavings.
        tokio::time::sleep(world.rng.duration_up_to(Duration::from_millis(2))).await;
    }
}

fn open_request(
    world: &World,
    client: usize,
    account_id: Option<AccountId>,
    currency: Currency,
) -> CommandRequest {
    CommandRequest::OpenAccount {
        account_id,
        owner: OwnerName::parse(&format!("Client {client}")).expect("a short owner name"),
        kind: if world.rng.chance(500) {
            AccountKind::Checking
        } else {
            AccountKind::Savings
        },
        currency,
        overdraft_limit: world
            .rng
            .chance(250)
            .then(|| OverdraftLimit::parse("50.00").expect("a valid overdraft limit")),
    }
}

/// A hot account most of the time, otherwise any account some client opened.
fn pick_account(world: &World, hot: &[(AccountId, Currency)]) -> AccountId {
    let known = world.known_accounts();
    if known.is_empty() || world.rng.chance(750) {
        world.rng.pick(hot).0.clone()
    } else {
        world.rng.pick(&known).clone()
    }
}

fn description(world: &World) -> Option<Description> {
    world
        .rng
        .chance(200)
        .then(|| Description::parse("simulated").expect("a short description"))
}

fn random_request(
    world: &World,
    client: usize,
    operation: u64,
    hot: &[(AccountId, Currency)],
) -> CommandRequest {
    let usd = hot[0].1;
    let roll = world.rng.between(0..=999);
    match roll {
        0..=79 => {
            let choice = world.rng.between(0..=9);
            let (account_id, currency) = match choice {
                0..=3 => {
                    let (id, currency) = world.rng.pick(hot).clone();
                    (Some(id), currency)
                }
                4..=6 => (Some(account(&format!("c{client}-a{operation}"))), usd),
                _ => (None, usd),
            };
            open_request(world, client, account_id, currency)
        }
        80..=359 => CommandRequest::Deposit {
            account_id: pick_account(world, hot),
            amount: cents(world.rng.between(100..=20_000)),
            description: description(world),
        },
        // Withdrawals reach past the usual balance, so that some fail for insufficient funds.
        360..=579 => CommandRequest::Withdraw {
            account_id: pick_account(world, hot),
            amount: cents(world.rng.between(100..=30_000)),
            description: description(world),
        },
        580..=879 => {
            let source_account_id = pick_account(world, hot);
            let target_account_id = if world.rng.chance(20) {
                source_account_id.clone()
            } else {
                pick_account(world, hot)
            };
            CommandRequest::Transfer {
                source_account_id,
                target_account_id,
                amount: cents(world.rng.between(100..=15_000)),
                description: description(world),
            }
        }
        // Fewer freezes than unfreezes, so that a frozen hot account does not refuse everything.
        880..=904 => CommandRequest::Freeze {
            account_id: pick_account(world, hot),
            reason: FreezeReason::parse("simulated freeze").expect("a short reason"),
        },
        905..=959 => CommandRequest::Unfreeze {
            account_id: pick_account(world, hot),
        },
        _ => CommandRequest::Close {
            account_id: pick_account(world, hot),
        },
    }
}

/// A request that differs from `original`, for sending under its key.
fn different_request(original: &CommandRequest, hot: &[(AccountId, Currency)]) -> CommandRequest {
    match original {
        CommandRequest::Deposit {
            account_id,
            amount,
            description,
        } => CommandRequest::Deposit {
            account_id: account_id.clone(),
            amount: Amount::new(amount.value() + Decimal::new(1, 2))
                .expect("a larger amount is positive"),
            description: description.clone(),
        },
        _ => CommandRequest::Deposit {
            account_id: hot[0].0.clone(),
            amount: cents(1),
            description: None,
        },
    }
}

/// Sends a command and its retries; then, now and then, a different request under the same key.
async fn command(world: &Arc<World>, state: &mut ClientState, key: &str, request: CommandRequest) {
    let answer = drive(world, state.client, key, &request).await;
    if let Some(Answer::Done(outcome)) = &answer {
        state.remember(world, outcome);
    }
    if answer.is_some() && world.rng.chance(world.config.behaviour.key_reuse) {
        let hot = hot_accounts(world.config.hot_accounts);
        let reused = different_request(&request, &hot);
        drive(world, state.client, key, &reused).await;
    }
}

/// Process 0 most of the time; the second process (same stores, its own locks) otherwise.
fn pick_process(world: &World) -> usize {
    usize::from(world.rng.chance(world.config.behaviour.second_instance))
}

type AttemptTasks = JoinSet<Answer>;

/// One attempt, sent after `delay` to process `process`; its answer is journaled when it arrives.
fn send_attempt(
    tasks: &mut AttemptTasks,
    world: &Arc<World>,
    client: usize,
    key: &str,
    request: &CommandRequest,
    attempt: u32,
    delay: Duration,
) {
    let process = pick_process(world);
    let (world, key, request) = (Arc::clone(world), key.to_owned(), request.clone());
    tasks.spawn(async move {
        tokio::time::sleep(delay).await;
        let sent_at_us = world.elapsed_us();
        let context = CommandContext {
            caller: ledger_application::Caller::anonymous(),
            idempotency_key: IdempotencyKey::parse(&key).expect("a simulation key is valid"),
            // The attempt number travels in the correlation id, so the events say which attempt wrote.
            correlation_id: format!("{key}#{attempt}"),
            traceparent: None,
        };
        let (answer, generation) = world.execute(process, &context, &request).await;
        let record = Attempt {
            client,
            key: &key,
            request: &request,
            number: attempt,
            sent_at_us,
            process,
            generation,
        };
        world.record_answer(&record, &answer);
        answer
    });
}

/// Sends `request` under `key` until an answer is definitive, with retries at random moments, and
/// returns that answer (`None` if even the last allowed attempt was transient).
async fn drive(
    world: &Arc<World>,
    client: usize,
    key: &str,
    request: &CommandRequest,
) -> Option<Answer> {
    let behaviour = world.config.behaviour;
    world.register_request(key, request);
    let mut tasks = AttemptTasks::new();
    let mut attempts = 1;
    send_attempt(
        &mut tasks,
        world,
        client,
        key,
        request,
        attempts,
        Duration::ZERO,
    );
    if world.rng.chance(behaviour.concurrent_retry) {
        // The client gives up waiting and sends again while the first attempt still runs.
        attempts += 1;
        let delay = world.rng.duration_up_to(Duration::from_millis(3));
        send_attempt(&mut tasks, world, client, key, request, attempts, delay);
    }
    let mut definitive: Option<Answer> = None;
    let mut retries_after_answer = 0;
    while let Some(joined) = tasks.join_next().await {
        let answer = joined.expect("an attempt task never panics");
        if answer.is_definitive() {
            if definitive.is_none() {
                definitive = Some(answer);
            }
            if retries_after_answer < 2 && world.rng.chance(behaviour.retry_after_answer) {
                // The answer got lost on the way back, or the client simply asks again later.
                retries_after_answer += 1;
                attempts += 1;
                let delay = world.rng.duration_up_to(Duration::from_millis(50));
                send_attempt(&mut tasks, world, client, key, request, attempts, delay);
            }
        } else if definitive.is_none() && tasks.is_empty() {
            if attempts >= behaviour.attempts_max {
                return None;
            }
            attempts += 1;
            let ceiling =
                Duration::from_millis(1 << attempts.min(7)).min(Duration::from_millis(100));
            let delay = Duration::from_millis(1) + world.rng.duration_up_to(ceiling);
            send_attempt(&mut tasks, world, client, key, request, attempts, delay);
        }
    }
    definitive
}

/// Reads an account or a page of its movements, waiting for the sequence this client last wrote.
async fn query(world: &Arc<World>, state: &mut ClientState) {
    let hot = hot_accounts(world.config.hot_accounts);
    let account_id = pick_account(world, &hot);
    let min_sequence = state.last_sequence.get(&account_id).copied();
    let client = state.client;
    world.count_query();
    if world.rng.chance(300) {
        match world
            .queries
            .transactions(&account_id, 0, 50, min_sequence)
            .await
        {
            Ok(page) => world.observe_transactions(client, &account_id, &page.items),
            Err(error) => query_failed(world, client, &account_id, &error),
        }
    } else {
        match world.queries.account(&account_id, min_sequence).await {
            Ok(view) => world.observe_account(client, &view),
            Err(error) => query_failed(world, client, &account_id, &error),
        }
    }
}

fn query_failed(world: &World, client: usize, account_id: &AccountId, error: &QueryError) {
    match error {
        QueryError::NotYetConsistent { .. } => world.observe_not_yet_consistent(client, account_id),
        other => world.trace(format!(
            "t={} c{client} query {account_id} -> {other}",
            world.elapsed_us()
        )),
    }
}
