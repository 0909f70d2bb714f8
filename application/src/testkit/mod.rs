//! Contract-test suites for the store ports, generic over the implementation.
//!
//! Every adapter runs the same suites, so "an event store" means one thing whether it is in memory,
//! SQLite, DynamoDB or PostgreSQL. An adapter's test file invokes a macro with an async factory that
//! returns a fresh, empty subject:
//!
//! ```text
//! ledger_application::event_store_contract_tests!(|| async {
//!     EventStoreSubject::new(Arc::new(InMemoryEventStore::new()), ())
//! });
//! ```
//!
//! Each case becomes its own `#[tokio::test]`, so a failure names the broken promise.

pub mod checkpoints;
pub mod event_feed;
pub mod event_scan;
pub mod event_store;
pub mod fixtures;
pub mod lease;
pub mod read_model;
pub mod rebuild;
pub mod snapshots;
pub mod two_instances;

use std::any::Any;
use std::sync::Arc;

use crate::ports::{
    EventFeed, EventStore, EventStoreScan, Projection, ProjectionCheckpoints, ReadModelQuery,
    SnapshotStore,
};

/// A fresh, empty event store, with whatever must outlive it (a temp dir, a table).
pub struct EventStoreSubject {
    pub store: Arc<dyn EventStore>,
    _guard: Box<dyn Any + Send>,
}

impl EventStoreSubject {
    pub fn new(store: Arc<dyn EventStore>, guard: impl Any + Send) -> Self {
        Self {
            store,
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for EventStoreSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStoreSubject").finish_non_exhaustive()
    }
}

/// A fresh, empty event store and the feed of the same events.
pub struct EventFeedSubject {
    pub store: Arc<dyn EventStore>,
    pub feed: Arc<dyn EventFeed>,
    _guard: Box<dyn Any + Send>,
}

impl EventFeedSubject {
    /// One store behind both ports, with whatever must outlive it.
    pub fn new<S>(store: Arc<S>, guard: impl Any + Send) -> Self
    where
        S: EventStore + EventFeed + 'static,
    {
        Self {
            store: store.clone(),
            feed: store,
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for EventFeedSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFeedSubject").finish_non_exhaustive()
    }
}

/// A fresh, empty event store and the scan over the same events.
pub struct EventScanSubject {
    pub store: Arc<dyn EventStore>,
    pub scan: Arc<dyn EventStoreScan>,
    _guard: Box<dyn Any + Send>,
}

impl EventScanSubject {
    /// One store behind both ports, with whatever must outlive it.
    pub fn new<S>(store: Arc<S>, guard: impl Any + Send) -> Self
    where
        S: EventStore + EventStoreScan + 'static,
    {
        Self {
            store: store.clone(),
            scan: store,
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for EventScanSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventScanSubject").finish_non_exhaustive()
    }
}

/// A fresh, empty read model, seen through each of its ports.
pub struct ReadModelSubject {
    pub projection: Arc<dyn Projection>,
    pub query: Arc<dyn ReadModelQuery>,
    _guard: Box<dyn Any + Send>,
}

impl ReadModelSubject {
    /// One read model behind both ports, with whatever must outlive it.
    pub fn new<R>(read_model: Arc<R>, guard: impl Any + Send) -> Self
    where
        R: Projection + ReadModelQuery + 'static,
    {
        Self {
            projection: read_model.clone(),
            query: read_model,
            _guard: Box::new(guard),
        }
    }
}

/// A fresh, empty store of the projectors' positions.
pub struct CheckpointsSubject {
    pub checkpoints: Arc<dyn ProjectionCheckpoints>,
    _guard: Box<dyn Any + Send>,
}

impl CheckpointsSubject {
    pub fn new(checkpoints: Arc<dyn ProjectionCheckpoints>, guard: impl Any + Send) -> Self {
        Self {
            checkpoints,
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for CheckpointsSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointsSubject").finish_non_exhaustive()
    }
}

/// A fresh, empty snapshot store.
pub struct SnapshotSubject {
    pub store: Arc<dyn SnapshotStore>,
    _guard: Box<dyn Any + Send>,
}

impl SnapshotSubject {
    pub fn new(store: Arc<dyn SnapshotStore>, guard: impl Any + Send) -> Self {
        Self {
            store,
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for SnapshotSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotSubject").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ReadModelSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModelSubject").finish_non_exhaustive()
    }
}

/// Generates one `#[tokio::test]` per event-store contract case. The argument is an expression that,
/// called with no arguments, returns a future of a fresh [`EventStoreSubject`].
#[macro_export]
macro_rules! event_store_contract_tests {
    ($new_subject:expr) => {
        $crate::__contract_cases!(
            $new_subject,
            event_store,
            [
                load_of_an_unknown_stream_is_empty,
                appended_events_load_in_sequence_order_with_every_field,
                load_after_a_sequence_returns_only_the_tail,
                stale_expected_version_is_a_conflict_and_writes_nothing,
                recorded_idempotency_key_is_a_duplicate_and_writes_nothing,
                duplicate_request_wins_over_conflict,
                idempotency_record_round_trips,
                multi_stream_append_commits_every_stream_and_the_record,
                conflict_on_one_stream_writes_no_stream,
                appends_above_the_action_limit_are_refused_whole,
                racing_appends_at_one_version_have_exactly_one_winner,
                racing_requests_with_one_key_have_exactly_one_winner,
                a_rejection_is_recorded_alone_and_takes_its_key,
                an_append_after_a_missing_event_is_refused_and_writes_nothing,
                an_event_recorded_before_its_predecessor_is_refused,
                racing_outcomes_under_one_key_have_exactly_one_winner,
            ]
        );
    };
}

/// Generates one `#[tokio::test]` per case of two command services (each with its own state cache)
/// on one event store. The argument is an expression that, called with no arguments, returns a
/// future of a fresh [`EventStoreSubject`].
#[macro_export]
macro_rules! two_instance_command_tests {
    ($new_subject:expr) => {
        $crate::__contract_cases!(
            $new_subject,
            two_instances,
            [
                a_withdrawal_that_fits_once_succeeds_once_across_two_instances,
                a_stale_cache_never_records_a_rejection_the_current_state_accepts,
                opening_an_account_another_instance_opened_is_refused,
                idempotency_keys_are_scoped_to_the_caller,
            ]
        );
    };
}

/// Generates one `#[tokio::test]` per event-feed contract case. The argument is an expression that,
/// called with no arguments, returns a future of a fresh [`EventFeedSubject`].
#[macro_export]
macro_rules! event_feed_contract_tests {
    ($new_subject:expr) => {
        $crate::__contract_cases!(
            $new_subject,
            event_feed,
            [
                feed_lists_every_event_in_commit_order,
                feed_skips_refused_appends_and_never_reuses_positions,
                feed_never_shows_a_refused_transfer,
            ]
        );
    };
}

/// Generates one `#[tokio::test]` per event-scan contract case. The argument is an expression that,
/// called with no arguments, returns a future of a fresh [`EventScanSubject`].
#[macro_export]
macro_rules! event_scan_contract_tests {
    ($new_subject:expr) => {
        $crate::__contract_cases!(
            $new_subject,
            event_scan,
            [
                an_empty_store_has_no_account,
                every_account_comes_exactly_once_across_small_pages,
                accounts_with_many_events_come_once,
                a_cursor_resumes_a_walk_from_its_text,
                events_pages_are_bounded_ordered_and_whole,
            ]
        );
    };
}

/// Generates one `#[tokio::test]` per read-model contract case. The argument is an expression that,
/// called with no arguments, returns a future of a fresh [`ReadModelSubject`].
#[macro_export]
macro_rules! read_model_contract_tests {
    ($new_subject:expr) => {
        $crate::__contract_cases!(
            $new_subject,
            read_model,
            [
                unknown_account_has_no_view_and_sequence_zero,
                opening_creates_the_account_view,
                movements_set_balance_transactions_and_daily_closing,
                status_changes_set_status_and_freeze_reason,
                out_of_order_updates_are_stale_and_write_nothing,
                opening_twice_is_stale,
                transactions_page_by_sequence,
                balance_lookup_is_inclusive_of_its_instant,
                daily_balances_filter_by_inclusive_date_range,
                dead_letters_are_kept_once_per_event,
                dead_letters_list_in_recorded_order_and_dedupe_unknown_events_by_raw_form,
                resolving_dead_letters_unblocks_the_account,
                racing_applies_of_one_update_apply_it_once,
                a_movement_before_the_opening_is_corrupt_and_writes_nothing,
                a_batch_of_next_events_reads_back_as_the_events_applied_one_by_one,
                a_batch_with_one_event_out_of_turn_writes_nothing,
                a_batch_with_a_movement_before_the_opening_writes_nothing,
                an_empty_batch_writes_nothing,
                racing_batches_of_the_same_events_apply_them_once,
            ]
        );
    };
}

/// Generates one `#[tokio::test]` per projection-checkpoints contract case. The argument is an
/// expression that, called with no arguments, returns a future of a fresh [`CheckpointsSubject`].
#[macro_export]
macro_rules! projection_checkpoints_contract_tests {
    ($new_subject:expr) => {
        $crate::__contract_cases!(
            $new_subject,
            checkpoints,
            [
                feed_checkpoints_start_empty_and_never_move_backwards,
                racing_feed_checkpoint_saves_keep_the_highest,
                feed_and_shard_checkpoints_are_apart,
                shard_checkpoints_are_kept_per_stream_and_shard,
            ]
        );
    };
}

/// Contenders for one fresh lease, and (where the lease lives on a connection that can be cut) a way to
/// cut every holder's connection.
pub struct LeaseSubject {
    pub contender: lease::NewContender,
    pub sever_holders: Option<lease::SeverHolders>,
    _guard: Box<dyn Any + Send>,
}

impl LeaseSubject {
    pub fn new(
        contender: lease::NewContender,
        sever_holders: Option<lease::SeverHolders>,
        guard: impl Any + Send,
    ) -> Self {
        Self {
            contender,
            sever_holders,
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for LeaseSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseSubject")
            .field("can_sever", &self.sever_holders.is_some())
            .finish_non_exhaustive()
    }
}

/// Generates one `#[tokio::test]` per projector-lease contract case. The argument is an expression
/// that, called with no arguments, returns a future of a fresh [`LeaseSubject`].
#[macro_export]
macro_rules! projector_lease_contract_tests {
    ($new_subject:expr) => {
        $crate::__contract_cases!(
            $new_subject,
            lease,
            [
                a_free_lease_is_acquired_and_confirmed,
                a_held_lease_is_refused_to_every_other_contender,
                racing_contenders_have_exactly_one_winner,
                dropping_the_held_lease_releases_it,
            ]
        );
    };
}

/// The case for leases on a connection that can be cut (the subject's `sever_holders` is `Some`):
/// PostgreSQL's session lock and the in-memory lease; not the file lock, which only the holder's
/// death releases (tested with processes in `bootstrap/tests`).
#[macro_export]
macro_rules! projector_lease_severing_contract_tests {
    ($new_subject:expr) => {
        $crate::__contract_cases!(
            $new_subject,
            lease,
            [a_severed_holder_learns_it_lost_the_lease_and_another_takes_over]
        );
    };
}

/// Generates one `#[tokio::test]` per snapshot-store contract case. The argument is an expression that,
/// called with no arguments, returns a future of a fresh [`SnapshotSubject`].
#[macro_export]
macro_rules! snapshot_store_contract_tests {
    ($new_subject:expr) => {
        $crate::__contract_cases!(
            $new_subject,
            snapshots,
            [
                an_account_without_snapshot_has_none,
                a_saved_snapshot_is_the_latest,
                a_stale_snapshot_never_replaces_a_newer_one,
                racing_snapshot_writers_leave_the_newest,
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    ($new_subject:expr, $suite:ident, [$($case:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let subject = ($new_subject)().await;
                $crate::testkit::$suite::$case(subject).await;
            }
        )*
    };
}
