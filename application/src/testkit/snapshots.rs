//! The contract of `SnapshotStore`: newest wins, and a stale writer never replaces a newer snapshot.

use std::sync::Arc;

use ledger_domain::{Account, AccountSnapshot};

use crate::ports::Snapshot;
use crate::testkit::SnapshotSubject;
use crate::testkit::fixtures::{account, at, deposited_event, opened_event};

/// The snapshot of `acc-1` after its opening and `deposits` deposits of 1.00 each.
fn snapshot_at(deposits: u64) -> Snapshot {
    let id = account("acc-1");
    let mut events = vec![opened_event()];
    for n in 1..=deposits {
        let balance = format!("{n}.00");
        events.push(deposited_event("1.00", &balance));
    }
    let state: AccountSnapshot = Account::replay(&id, &events)
        .expect("a valid history")
        .expect("opened")
        .snapshot();
    Snapshot {
        account_id: id,
        state,
        taken_at: at(10, 9, u32::try_from(deposits).expect("small")),
    }
}

pub async fn an_account_without_snapshot_has_none(subject: SnapshotSubject) {
    assert_eq!(
        subject.store.latest(&account("acc-1")).await.expect("read"),
        None
    );
}

pub async fn a_saved_snapshot_is_the_latest(subject: SnapshotSubject) {
    let snapshot = snapshot_at(5);
    assert!(subject.store.save(&snapshot).await.expect("save"));
    assert_eq!(
        subject.store.latest(&account("acc-1")).await.expect("read"),
        Some(snapshot.clone())
    );
    let newer = snapshot_at(9);
    assert!(subject.store.save(&newer).await.expect("save newer"));
    assert_eq!(
        subject.store.latest(&account("acc-1")).await.expect("read"),
        Some(newer)
    );
    assert_eq!(
        subject.store.latest(&account("acc-2")).await.expect("read"),
        None
    );
}

pub async fn a_stale_snapshot_never_replaces_a_newer_one(subject: SnapshotSubject) {
    let newer = snapshot_at(9);
    assert!(subject.store.save(&newer).await.expect("save"));
    assert!(
        !subject
            .store
            .save(&snapshot_at(5))
            .await
            .expect("stale save")
    );
    let mut same_version = snapshot_at(9);
    same_version.taken_at = at(11, 0, 0);
    assert!(
        !subject
            .store
            .save(&same_version)
            .await
            .expect("same version")
    );
    assert_eq!(
        subject.store.latest(&account("acc-1")).await.expect("read"),
        Some(newer)
    );
}

pub async fn racing_snapshot_writers_leave_the_newest(subject: SnapshotSubject) {
    let mut tasks = tokio::task::JoinSet::new();
    for deposits in [3_u64, 17, 8, 12, 1, 16, 4] {
        let store = Arc::clone(&subject.store);
        tasks.spawn(async move { store.save(&snapshot_at(deposits)).await.expect("save") });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task");
    }
    let latest = subject
        .store
        .latest(&account("acc-1"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(latest, snapshot_at(17));
}
