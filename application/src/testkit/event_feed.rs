//! The contract of `EventFeed`: every committed event, once, in commit order, at a position that is
//! never reused.

use crate::testkit::EventFeedSubject;
use crate::testkit::event_store::seed;
use crate::testkit::fixtures::{
    at, deposited_event, multi_append, recorded, single_append, transfer_events,
};

pub async fn feed_lists_every_event_in_commit_order(subject: EventFeedSubject) {
    seed(subject.store.as_ref(), "acc-a").await;
    seed(subject.store.as_ref(), "acc-b").await;
    let all = subject.feed.read_after(0, 100).await.expect("feed");
    let order: Vec<_> = all
        .iter()
        .map(|f| {
            let event = f.event().expect("decodable");
            (event.account_id.to_string(), event.sequence)
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("acc-a".to_owned(), 1),
            ("acc-a".to_owned(), 2),
            ("acc-b".to_owned(), 1),
            ("acc-b".to_owned(), 2),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let page = subject
        .feed
        .read_after(all[0].position, 2)
        .await
        .expect("feed page");
    assert_eq!(page, all[1..3].to_vec());
    let end = subject
        .feed
        .read_after(all[3].position, 10)
        .await
        .expect("feed end");
    assert!(end.is_empty());
}

pub async fn feed_skips_refused_appends_and_never_reuses_positions(subject: EventFeedSubject) {
    seed(subject.store.as_ref(), "acc-a").await;
    let before = subject.feed.read_after(0, 100).await.expect("feed");
    let refused = single_append(
        "refused",
        1,
        vec![recorded(
            "acc-a",
            2,
            deposited_event("1.00", "1.00"),
            at(7, 9, 0),
        )],
    );
    assert!(subject.store.append(refused).await.is_err());
    let accepted = recorded("acc-a", 3, deposited_event("1.00", "101.00"), at(7, 9, 1));
    subject
        .store
        .append(single_append("accepted", 2, vec![accepted.clone()]))
        .await
        .expect("append");
    let after = subject
        .feed
        .read_after(before.last().expect("seeded").position, 100)
        .await
        .expect("feed");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].event(), Some(&accepted));
    assert!(after[0].position > before.last().expect("seeded").position);
}

pub async fn feed_never_shows_a_refused_transfer(subject: EventFeedSubject) {
    seed(subject.store.as_ref(), "acc-a").await;
    seed(subject.store.as_ref(), "acc-b").await;
    let (debit, credit) = transfer_events("acc-a", "acc-b", "30.00", "70.00", "130.00");
    let stale = multi_append(
        "transfer-stale",
        vec![
            (2, recorded("acc-a", 3, debit, at(5, 9, 0))),
            (1, recorded("acc-b", 2, credit, at(5, 9, 0))),
        ],
    );
    assert!(subject.store.append(stale).await.is_err());
    let feed = subject.feed.read_after(0, 100).await.expect("feed");
    assert_eq!(feed.len(), 4, "only the seeded events are in the feed");
}
