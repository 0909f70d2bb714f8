//! The projector lease contract: one holder at a time, released on drop, and taken over once the
//! holder's connection is gone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::LeaseSubject;
use crate::ports::{HeldLease, ProjectorLease};

/// How long a released or severed lease may take to be free for a contender: the standby of
/// `ledger-projector` must take over "within seconds".
const TAKEOVER_WITHIN: Duration = Duration::from_secs(5);

/// A contender for the lease, built as another process would build it.
pub type NewContender =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn ProjectorLease>> + Send>> + Send + Sync>;

/// Takes away every holder's connection, as a crash or the server would.
pub type SeverHolders = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

async fn acquired(lease: &dyn ProjectorLease) -> Option<Box<dyn HeldLease>> {
    lease.try_acquire().await.expect("the lease store answers")
}

/// Polls `lease` until it is acquired, within `TAKEOVER_WITHIN`.
async fn acquired_within_takeover(lease: &dyn ProjectorLease) -> Box<dyn HeldLease> {
    let deadline = Instant::now() + TAKEOVER_WITHIN;
    loop {
        if let Some(held) = acquired(lease).await {
            return held;
        }
        assert!(
            Instant::now() < deadline,
            "the lease was not free within {TAKEOVER_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn a_free_lease_is_acquired_and_confirmed(subject: LeaseSubject) {
    let lease = (subject.contender)().await;
    let held = acquired(lease.as_ref()).await.expect("a free lease");
    for _ in 0..3 {
        held.confirm().await.expect("still held");
    }
}

pub async fn a_held_lease_is_refused_to_every_other_contender(subject: LeaseSubject) {
    let first = (subject.contender)().await;
    let second = (subject.contender)().await;
    let held = acquired(first.as_ref()).await.expect("a free lease");
    assert!(acquired(second.as_ref()).await.is_none(), "another process");
    assert!(
        acquired(first.as_ref()).await.is_none(),
        "the same lease asked again is a second holder too"
    );
    held.confirm()
        .await
        .expect("the refusals left the holder alone");
}

pub async fn racing_contenders_have_exactly_one_winner(subject: LeaseSubject) {
    let mut contenders = Vec::new();
    for _ in 0..6 {
        contenders.push((subject.contender)().await);
    }
    let attempts = contenders.iter().map(|lease| {
        let lease = Arc::clone(lease);
        tokio::spawn(async move { lease.try_acquire().await.expect("answers") })
    });
    let mut winners = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        if let Some(held) = attempt.await.expect("attempt task") {
            winners.push(held);
        }
    }
    assert_eq!(winners.len(), 1);
}

pub async fn dropping_the_held_lease_releases_it(subject: LeaseSubject) {
    let first = (subject.contender)().await;
    let second = (subject.contender)().await;
    let held = acquired(first.as_ref()).await.expect("a free lease");
    assert!(acquired(second.as_ref()).await.is_none());
    drop(held);
    let taken_over = acquired_within_takeover(second.as_ref()).await;
    taken_over.confirm().await.expect("the new holder holds it");
    assert!(
        acquired(first.as_ref()).await.is_none(),
        "the first is now the standby"
    );
}

/// For implementations whose lease lives on a connection that can be cut (not a file lock, which only
/// the holder's death releases): the holder learns it lost the lease, and a contender takes over.
pub async fn a_severed_holder_learns_it_lost_the_lease_and_another_takes_over(
    subject: LeaseSubject,
) {
    let sever = subject
        .sever_holders
        .as_ref()
        .expect("this suite needs a subject that can sever holders");
    let first = (subject.contender)().await;
    let second = (subject.contender)().await;
    let held = acquired(first.as_ref()).await.expect("a free lease");
    sever().await;
    let deadline = Instant::now() + TAKEOVER_WITHIN;
    while held.confirm().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the severed holder still believes it holds the lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let taken_over = acquired_within_takeover(second.as_ref()).await;
    taken_over.confirm().await.expect("the new holder holds it");
    assert!(
        held.confirm().await.is_err(),
        "a lost lease stays lost for its old holder"
    );
}
