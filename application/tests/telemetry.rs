//! The instrumentation of the command service, the event-store decorator and the projector, seen
//! through an OpenTelemetry SDK with in-memory exporters: which spans are made, how they nest and
//! which trace they belong to, and what the metrics count.
//!
//! Every test takes `SERIAL`: the meter provider is global (the instruments bind to it once), so a
//! test's metric deltas would otherwise include its neighbours' commands. Spans go to a subscriber
//! of each test's own, set for its thread (the tests run on a current-thread runtime).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use ledger_application::envelope::RecordedEvent;
use ledger_application::idempotency::{IdempotencyKey, IdempotencyRecord};
use ledger_application::memory::{InMemoryEventStore, InMemoryReadModel};
use ledger_application::metrics;
use ledger_application::ports::{
    AppendError, AtomicAppend, EventStore, Projection, StoreError, SystemClock, UndecodableEvent,
    UuidV7Ids,
};
use ledger_application::testkit::fixtures::{
    account, at, deposit_request, deposited_event, key, open_request, recorded, withdraw_request,
};
use ledger_application::trace_context::parse_traceparent;
use ledger_application::{
    CommandContext, CommandError, CommandService, InstrumentedEventStore, Projected,
    ProjectionRetry, Projector, RetryPolicy,
};
use ledger_domain::AccountId;
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tokio::sync::Mutex;
use tracing_subscriber::layer::SubscriberExt as _;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// The incoming header of the tests that send one (the W3C specification's example).
const INCOMING: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// This test's turn: the meter provider installed (before anything of the ledger records) and the
/// other tests of the binary kept out until it is done.
async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    meter();
    SERIAL.lock().await
}

/// Spans of this test, exported as they end.
struct Traced {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _subscriber: tracing::subscriber::DefaultGuard,
}

fn traced() -> Traced {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("ledger-test")));
    Traced {
        exporter,
        _provider: provider,
        _subscriber: tracing::subscriber::set_default(subscriber),
    }
}

impl Traced {
    fn spans(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().expect("spans")
    }
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|span| span.name == name).collect()
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found = named(spans, name);
    assert_eq!(
        found.len(),
        1,
        "one {name} span expected in {:#?}",
        names(spans)
    );
    found[0]
}

fn names(spans: &[SpanData]) -> Vec<&str> {
    spans.iter().map(|span| span.name.as_ref()).collect()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn string_attribute(span: &SpanData, key: &str) -> String {
    attribute(span, key)
        .unwrap_or_else(|| panic!("{} has no {key}", span.name))
        .to_string()
}

fn trace_id(span: &SpanData) -> TraceId {
    span.span_context.trace_id()
}

fn span_id(span: &SpanData) -> SpanId {
    span.span_context.span_id()
}

/// Whether `child` is a direct child of `parent` in one trace.
fn is_child_of(child: &SpanData, parent: &SpanData) -> bool {
    trace_id(child) == trace_id(parent) && child.parent_span_id == span_id(parent)
}

fn context(key_text: &str, traceparent: Option<&str>) -> CommandContext {
    CommandContext {
        caller: ledger_application::Caller::anonymous(),
        idempotency_key: key(key_text),
        correlation_id: format!("corr-{key_text}"),
        traceparent: traceparent.map(str::to_owned),
    }
}

/// A command service over the decorator around `store`.
fn service(store: Arc<dyn EventStore>, retry: RetryPolicy) -> CommandService {
    CommandService::new(
        Arc::new(InstrumentedEventStore::new(store)),
        Arc::new(SystemClock),
        Arc::new(UuidV7Ids),
        retry,
    )
}

fn projector() -> Projector {
    Projector::new(
        Arc::new(InMemoryReadModel::new()),
        Arc::new(SystemClock),
        ProjectionRetry {
            attempts_per_event_max: 1,
            retry_delay: std::time::Duration::ZERO,
        },
    )
}

/// Opens `account_id` and deposits 10.00 into it (keys `open-<id>`, `deposit-<id>`); the stored
/// events, in order.
async fn open_and_deposit(account_id: &str) -> (Arc<InMemoryEventStore>, Vec<RecordedEvent>) {
    let store = Arc::new(InMemoryEventStore::new());
    let commands = service(store.clone(), RetryPolicy::default());
    commands
        .execute(
            &context(&format!("open-{account_id}"), None),
            &open_request(account_id),
        )
        .await
        .expect("open");
    commands
        .execute(
            &context(&format!("deposit-{account_id}"), None),
            &deposit_request(account_id, "10.00"),
        )
        .await
        .expect("deposit");
    let events = store.load(&account(account_id), 0).await.expect("load");
    assert_eq!(events.len(), 2);
    (store, events)
}

#[tokio::test]
async fn a_commands_append_is_its_child_and_its_events_name_the_command_span() {
    let _serial = exclusive().await;
    let traced = traced();
    let (_, events) = open_and_deposit("acc-trace").await;

    let spans = traced.spans();
    let command = one(&spans, "command deposit");
    assert_eq!(command.span_kind, SpanKind::Internal);
    assert_eq!(string_attribute(command, "ledger.command.type"), "deposit");
    assert_eq!(
        string_attribute(command, "ledger.command.outcome"),
        "accepted"
    );
    assert_eq!(string_attribute(command, "ledger.command.attempts"), "1");
    // The cache holds the account opened just before: the deposit appends without a read.
    let appends: Vec<_> = named(&spans, "event_store.append")
        .into_iter()
        .filter(|span| is_child_of(span, command))
        .collect();
    assert_eq!(appends.len(), 1, "{:#?}", names(&spans));
    assert_eq!(appends[0].span_kind, SpanKind::Client);
    assert_eq!(
        string_attribute(appends[0], "ledger.event_store.operation"),
        "append"
    );
    assert_eq!(
        string_attribute(appends[0], "ledger.account_ids"),
        "acc-trace"
    );

    let deposited = &events[1];
    assert_eq!(
        deposited.metadata.traceparent.as_deref(),
        Some(format!("00-{}-{}-01", trace_id(command), span_id(command)).as_str()),
        "the stored traceparent names the command span"
    );
    let opening = one(&spans, "command open_account");
    assert_ne!(
        trace_id(opening),
        trace_id(command),
        "two requests, two traces"
    );
    assert!(
        events[0]
            .metadata
            .traceparent
            .as_deref()
            .is_some_and(|stored| stored.contains(&span_id(opening).to_string()))
    );
}

#[tokio::test]
async fn a_command_continues_the_incoming_traceparent_without_a_current_span() {
    let _serial = exclusive().await;
    let traced = traced();
    let store = Arc::new(InMemoryEventStore::new());
    let commands = service(store.clone(), RetryPolicy::default());
    commands
        .execute(&context("open-in", Some(INCOMING)), &open_request("acc-in"))
        .await
        .expect("open");

    let spans = traced.spans();
    let command = one(&spans, "command open_account");
    let incoming = parse_traceparent(INCOMING).expect("valid");
    assert_eq!(trace_id(command), incoming.trace_id());
    assert_eq!(command.parent_span_id, incoming.span_id());
    let stored = store.load(&account("acc-in"), 0).await.expect("load");
    assert_eq!(
        stored[0].metadata.traceparent,
        Some(format!(
            "00-{}-{}-01",
            incoming.trace_id(),
            span_id(command)
        ))
    );
}

#[tokio::test]
async fn under_a_request_span_the_command_is_its_child_not_its_sibling() {
    let _serial = exclusive().await;
    let traced = traced();
    let commands = service(Arc::new(InMemoryEventStore::new()), RetryPolicy::default());
    // What the HTTP middleware does: a server span continuing the header, the command inside it.
    let request = tracing::info_span!("http.request", otel.kind = "server");
    ledger_application::trace_context::continue_trace(&request, Some(INCOMING));
    tracing::Instrument::instrument(
        commands.execute(
            &context("open-req", Some(INCOMING)),
            &open_request("acc-req"),
        ),
        request,
    )
    .await
    .expect("open");

    let spans = traced.spans();
    let request = one(&spans, "http.request");
    let command = one(&spans, "command open_account");
    assert!(is_child_of(command, request));
}

#[tokio::test]
async fn the_projector_continues_each_commands_trace_one_event_at_a_time() {
    let _serial = exclusive().await;
    let traced = traced();
    let (_, events) = open_and_deposit("acc-one").await;
    traced.exporter.reset();
    let projector = projector();
    for event in &events {
        assert_eq!(
            projector.project(event).await.expect("project"),
            Projected::Applied
        );
    }

    let spans = traced.spans();
    let applies = named(&spans, "projector.apply");
    assert_eq!(applies.len(), 2, "{:#?}", names(&spans));
    for (apply, event) in applies.iter().zip(&events) {
        assert_applied_in_its_trace(&spans, apply, event);
    }
}

#[tokio::test]
async fn a_batch_links_every_events_trace_and_each_event_still_reaches_its_own() {
    let _serial = exclusive().await;
    let traced = traced();
    let (_, first) = open_and_deposit("acc-b1").await;
    let (_, second) = open_and_deposit("acc-b2").await;
    let events: Vec<RecordedEvent> = first.into_iter().chain(second).collect();
    traced.exporter.reset();
    let projected = projector().project_batch(&events).await.expect("batch");
    assert_eq!(projected, vec![Projected::Applied; 4]);

    let spans = traced.spans();
    let batch = one(&spans, "projector.apply_batch");
    assert_eq!(string_attribute(batch, "ledger.batch.events"), "4");
    let write = one(&spans, "read_model.apply_batch");
    assert!(is_child_of(write, batch));
    let linked: Vec<SpanId> = batch
        .links
        .iter()
        .map(|link| link.span_context.span_id())
        .collect();
    let applies = named(&spans, "projector.apply");
    assert_eq!(applies.len(), 4, "{:#?}", names(&spans));
    for event in &events {
        let stored = parse_traceparent(event.metadata.traceparent.as_deref().expect("stored"))
            .expect("valid");
        assert!(
            linked.contains(&stored.span_id()),
            "the batch links each event's command"
        );
        let apply = applies
            .iter()
            .find(|apply| {
                string_attribute(apply, "ledger.account_id") == event.account_id.as_str()
                    && string_attribute(apply, "ledger.sequence") == event.sequence.to_string()
            })
            .expect("a projector.apply span per event");
        assert_eq!(trace_id(apply), stored.trace_id());
        assert_eq!(apply.parent_span_id, stored.span_id());
        assert!(
            apply
                .links
                .iter()
                .any(|link| link.span_context.span_id() == span_id(batch)),
            "each event's apply links back to the batch"
        );
    }
}

#[tokio::test]
async fn a_redrive_applies_each_event_in_its_own_trace() {
    let _serial = exclusive().await;
    let traced = traced();
    let (store, events) = open_and_deposit("acc-r").await;
    let read_model = Arc::new(InMemoryReadModel::new());
    let projector = Projector::new(
        read_model.clone(),
        Arc::new(SystemClock),
        ProjectionRetry {
            attempts_per_event_max: 1,
            retry_delay: std::time::Duration::ZERO,
        },
    );
    // The deposit arrives first: a gap, dead-lettered; the redrive applies both from the store.
    assert_eq!(
        projector.project(&events[1]).await.expect("project"),
        Projected::DeadLettered
    );
    let letter = read_model.dead_letters(10).await.expect("letters")[0].id;
    traced.exporter.reset();
    let redriven = projector
        .redrive(store.as_ref(), letter)
        .await
        .expect("redrive");
    assert_eq!(redriven.applied, 2);

    let spans = traced.spans();
    let applies = named(&spans, "projector.apply");
    assert_eq!(applies.len(), 2, "{:#?}", names(&spans));
    for (apply, event) in applies.iter().zip(&events) {
        assert_applied_in_its_trace(&spans, apply, event);
    }
}

/// `apply` is the `projector.apply` of `event`: in the trace of the command that recorded it, a
/// child of the command span, applied, with one read-model write under it.
fn assert_applied_in_its_trace(spans: &[SpanData], apply: &SpanData, event: &RecordedEvent) {
    let stored =
        parse_traceparent(event.metadata.traceparent.as_deref().expect("stored")).expect("valid");
    assert_eq!(trace_id(apply), stored.trace_id());
    assert_eq!(apply.parent_span_id, stored.span_id());
    assert!(apply.parent_span_is_remote);
    assert_eq!(apply.span_kind, SpanKind::Consumer);
    assert_eq!(
        string_attribute(apply, "ledger.projection.outcome"),
        "applied"
    );
    assert_eq!(
        string_attribute(apply, "ledger.sequence"),
        event.sequence.to_string()
    );
    let writes = named(spans, "read_model.apply")
        .into_iter()
        .filter(|write| is_child_of(write, apply))
        .count();
    assert_eq!(writes, 1, "one read-model write under each apply");
}

/// The meter provider of this test binary, installed before anything records (every test calls
/// this first, under `SERIAL`), so the ledger's instruments bind to it.
fn meter() -> &'static (SdkMeterProvider, InMemoryMetricExporter) {
    static METER: OnceLock<(SdkMeterProvider, InMemoryMetricExporter)> = OnceLock::new();
    METER.get_or_init(|| {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        opentelemetry::global::set_meter_provider(provider.clone());
        (provider, exporter)
    })
}

/// A cumulative reading of every instrument, taken now.
struct Reading(Vec<(String, Vec<KeyValue>, u64)>);

impl Reading {
    /// Counters read as their sum, histograms as their count of measurements.
    fn now() -> Self {
        let (provider, exporter) = meter();
        exporter.reset();
        provider.force_flush().expect("flush");
        let batches = exporter.get_finished_metrics().expect("metrics");
        let mut points = Vec::new();
        for resource in &batches {
            for scope in resource.scope_metrics() {
                for metric in scope.metrics() {
                    let name = metric.name().to_owned();
                    let readings: Vec<(Vec<KeyValue>, u64)> = match metric.data() {
                        AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                            .data_points()
                            .map(|point| (point.attributes().cloned().collect(), point.value()))
                            .collect(),
                        AggregatedMetrics::U64(MetricData::Histogram(histogram)) => histogram
                            .data_points()
                            .map(|point| (point.attributes().cloned().collect(), point.count()))
                            .collect(),
                        _ => Vec::new(),
                    };
                    points.extend(
                        readings
                            .into_iter()
                            .map(|(attributes, value)| (name.clone(), attributes, value)),
                    );
                }
            }
        }
        Self(points)
    }

    /// The value of `name` over every point carrying all of `attributes`.
    fn value(&self, name: &str, attributes: &[(&str, &str)]) -> u64 {
        self.0
            .iter()
            .filter(|(point_name, point_attributes, _)| {
                point_name == name
                    && attributes.iter().all(|(key, value)| {
                        point_attributes
                            .iter()
                            .any(|kv| kv.key.as_str() == *key && kv.value.as_str() == *value)
                    })
            })
            .map(|(_, _, value)| value)
            .sum()
    }
}

/// How much `name` (with `attributes`) grew from `before` to `after`.
fn grew(before: &Reading, after: &Reading, name: &str, attributes: &[(&str, &str)]) -> u64 {
    after.value(name, attributes) - before.value(name, attributes)
}

#[tokio::test]
async fn commands_by_type_and_outcome_and_the_projection_lag_are_measured() {
    let _serial = exclusive().await;
    let before = Reading::now();
    let store = Arc::new(InMemoryEventStore::new());
    let commands = service(store.clone(), RetryPolicy::default());
    commands
        .execute(&context("open-m", None), &open_request("acc-m"))
        .await
        .expect("open");
    let refused = commands
        .execute(
            &context("withdraw-m", None),
            &withdraw_request("acc-m", "5.00"),
        )
        .await;
    assert!(matches!(refused, Err(CommandError::Rejected(_))));
    // The same request again: answered from its record.
    let again = commands
        .execute(&context("open-m", None), &open_request("acc-m"))
        .await;
    assert!(again.is_ok());
    let events = store.load(&account("acc-m"), 0).await.expect("load");
    assert_eq!(events.len(), 1);
    // The same kind of event once through each path: one lag measurement each.
    let projector = projector();
    projector.project(&events[0]).await.expect("single");
    let (_, other) = open_and_deposit("acc-m2").await;
    projector.project_batch(&other).await.expect("batch");
    let after = Reading::now();

    let commands_of = |command_type, outcome| {
        grew(
            &before,
            &after,
            metrics::COMMANDS,
            &[
                ("ledger.command.type", command_type),
                ("ledger.command.outcome", outcome),
            ],
        )
    };
    assert_eq!(
        commands_of("open_account", "accepted"),
        2,
        "acc-m and acc-m2"
    );
    assert_eq!(commands_of("withdraw", "rejected"), 1);
    assert_eq!(commands_of("open_account", "replayed"), 1);
    assert_eq!(
        grew(
            &before,
            &after,
            metrics::PROJECTION_LAG,
            &[("ledger.event_type", "AccountOpened")]
        ),
        2
    );
    assert_eq!(
        grew(
            &before,
            &after,
            metrics::PROJECTION_LAG,
            &[("ledger.event_type", "MoneyDeposited")]
        ),
        1
    );
    assert_eq!(commands_of("deposit", "accepted"), 1);
    assert_eq!(
        grew(
            &before,
            &after,
            metrics::EVENT_STORE_DURATION,
            &[
                ("ledger.event_store.operation", "append"),
                ("ledger.event_store.outcome", "ok")
            ]
        ),
        5,
        "the two openings, the deposit, the rejection's record and the replay's refused append: \
         refusals are answers"
    );
    assert!(
        grew(
            &before,
            &after,
            metrics::EVENT_STORE_DURATION,
            &[("ledger.event_store.operation", "read_idempotency")]
        ) >= 1,
        "the replay read the record"
    );
}

/// A store whose appends are refused as conflicts, without writing, `conflicts` times.
struct Conflicting {
    inner: InMemoryEventStore,
    conflicts: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl EventStore for Conflicting {
    async fn load(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.load(account_id, after_sequence).await
    }

    async fn append(&self, append: AtomicAppend) -> Result<(), AppendError> {
        let left = self.conflicts.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.conflicts
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(AppendError::Conflict {
                account_id: append.streams()[0].account_id.clone(),
            });
        }
        self.inner.append(append).await
    }

    async fn idempotency_record(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.idempotency_record(key).await
    }
}

#[tokio::test]
async fn conflicts_and_retries_are_counted() {
    let _serial = exclusive().await;
    let before = Reading::now();
    let store = Arc::new(Conflicting {
        inner: InMemoryEventStore::new(),
        conflicts: std::sync::atomic::AtomicU32::new(1),
    });
    let policy = RetryPolicy {
        attempts_max: 2,
        backoff_base: std::time::Duration::from_millis(1),
        backoff_max: std::time::Duration::from_millis(1),
    };
    let commands = service(store.clone(), policy).with_state_cache(0);
    commands
        .execute(&context("open-c", None), &open_request("acc-c"))
        .await
        .expect("accepted on the second attempt");
    // Two more conflicts than the policy's attempts allow: the command gives up.
    store
        .conflicts
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let gave_up = commands
        .execute(
            &context("deposit-c", None),
            &deposit_request("acc-c", "1.00"),
        )
        .await;
    assert!(matches!(
        gave_up,
        Err(CommandError::ConcurrencyConflict { attempts: 2 })
    ));
    let after = Reading::now();

    let of_type = |name, command_type| {
        grew(
            &before,
            &after,
            name,
            &[("ledger.command.type", command_type)],
        )
    };
    assert_eq!(of_type(metrics::COMMAND_CONFLICTS, "open_account"), 1);
    assert_eq!(of_type(metrics::COMMAND_RETRIES, "open_account"), 1);
    assert_eq!(of_type(metrics::COMMAND_CONFLICTS, "deposit"), 2);
    assert_eq!(
        of_type(metrics::COMMAND_RETRIES, "deposit"),
        1,
        "the second conflict ends the command"
    );
    assert_eq!(
        grew(
            &before,
            &after,
            metrics::COMMANDS,
            &[
                ("ledger.command.type", "deposit"),
                ("ledger.command.outcome", "conflict")
            ]
        ),
        1
    );
}

#[tokio::test]
async fn dead_letters_are_counted_by_reason() {
    let _serial = exclusive().await;
    let before = Reading::now();
    let projector = projector();
    // Event 2 of an account whose event 1 never came: a gap, dead-lettered after one attempt.
    let orphan = recorded("acc-d", 2, deposited_event("1.00", "1.00"), at(1, 9, 0));
    assert_eq!(
        projector.project(&orphan).await.expect("project"),
        Projected::DeadLettered
    );
    // Event 3 waits behind it.
    let behind = recorded("acc-d", 3, deposited_event("1.00", "2.00"), at(1, 9, 1));
    assert_eq!(
        projector.project(&behind).await.expect("project"),
        Projected::WaitingBehindDeadLetter
    );
    let undecodable = UndecodableEvent {
        account_id: Some(account("acc-u")),
        sequence: Some(1),
        raw: "{}".to_owned(),
        error: "no payload".to_owned(),
    };
    assert_eq!(
        projector
            .project_undecodable(&undecodable)
            .await
            .expect("project"),
        Projected::DeadLettered
    );
    let after = Reading::now();

    let letters = |reason| {
        grew(
            &before,
            &after,
            metrics::DEAD_LETTERS,
            &[("ledger.dead_letter.reason", reason)],
        )
    };
    assert_eq!(letters("gap"), 1);
    assert_eq!(letters("waiting"), 1);
    assert_eq!(letters("undecodable"), 1);
    assert_eq!(
        grew(
            &before,
            &after,
            metrics::PROJECTION_LAG,
            &[("ledger.event_type", "MoneyDeposited")]
        ),
        0,
        "no lag for events not applied"
    );
}
