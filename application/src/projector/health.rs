//! What readiness needs from the projector: its progress (the projection lag) and the two health
//! checks, open dead letters and a lag beyond its bound.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ports::{Clock, DeadLetterId, HealthCheck, Projection, StoreError};

/// How far behind the projector is, as readiness sees it.
///
/// Caught up (the source had nothing more) means no lag. Otherwise the lag runs from the newest event
/// handled, or from the moment work was found if that is later: under writes that never stop this is
/// the age of the events being projected, and a projector that hangs or keeps failing sees it grow.
#[derive(Debug)]
pub struct ProjectionProgress {
    state: Mutex<ProgressState>,
}

#[derive(Debug, Clone, Copy)]
struct ProgressState {
    caught_up: bool,
    working_since: DateTime<Utc>,
    newest_handled: Option<DateTime<Utc>>,
}

impl ProjectionProgress {
    /// A projector that has just started: not caught up, working since `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new(ProgressState {
                caught_up: false,
                working_since: now,
                newest_handled: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        // Plain values only: a poisoned lock still holds a usable state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The source handed out events: if the projector was caught up, it is working from `now` on.
    pub fn found_work(&self, now: DateTime<Utc>) {
        let mut state = self.lock();
        if state.caught_up {
            state.caught_up = false;
            state.working_since = now;
        }
    }

    /// An event recorded at `recorded_at` was handled (applied, skipped or dead-lettered).
    pub fn handled(&self, recorded_at: DateTime<Utc>) {
        let mut state = self.lock();
        state.newest_handled = Some(
            state
                .newest_handled
                .map_or(recorded_at, |n| n.max(recorded_at)),
        );
    }

    /// The source had nothing more to hand out.
    pub fn caught_up(&self) {
        self.lock().caught_up = true;
    }

    /// The lag at `now`; zero when caught up.
    pub fn lag(&self, now: DateTime<Utc>) -> Duration {
        let state = *self.lock();
        if state.caught_up {
            return Duration::ZERO;
        }
        let since = state.newest_handled.map_or(state.working_since, |newest| {
            newest.max(state.working_since)
        });
        (now - since).to_std().unwrap_or(Duration::ZERO)
    }
}

/// Why readiness fails on the projector's account. Only in the logs: the body names the check.
#[derive(Debug, thiserror::Error)]
enum ProjectorUnready {
    #[error(
        "dead letter {oldest} is open ({reason}); list them with `ledger dead-letters list`, redrive \
         with `ledger dead-letters retry ID`"
    )]
    DeadLetters {
        oldest: DeadLetterId,
        reason: String,
    },
    #[error("projection lag {lag_ms} ms exceeds the bound of {lag_max_ms} ms")]
    Behind { lag_ms: u128, lag_max_ms: u128 },
}

/// Readiness fails while any dead letter is open (`dead_letters`): the read model is missing events.
pub struct DeadLetterCheck {
    projection: Arc<dyn Projection>,
}

impl DeadLetterCheck {
    pub fn new(projection: Arc<dyn Projection>) -> Self {
        Self { projection }
    }
}

impl std::fmt::Debug for DeadLetterCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterCheck").finish_non_exhaustive()
    }
}

#[async_trait]
impl HealthCheck for DeadLetterCheck {
    fn name(&self) -> &'static str {
        "dead_letters"
    }

    async fn check(&self) -> Result<(), StoreError> {
        match self.projection.dead_letters(1).await?.into_iter().next() {
            None => Ok(()),
            Some(oldest) => Err(StoreError::unavailable(ProjectorUnready::DeadLetters {
                oldest: oldest.id,
                reason: oldest.letter.reason,
            })),
        }
    }
}

/// Readiness fails while the projection lag exceeds a bound (`projection_lag`).
pub struct ProjectionLagCheck {
    progress: Arc<ProjectionProgress>,
    clock: Arc<dyn Clock>,
    lag_max: Duration,
}

impl ProjectionLagCheck {
    pub fn new(
        progress: Arc<ProjectionProgress>,
        clock: Arc<dyn Clock>,
        lag_max: Duration,
    ) -> Self {
        Self {
            progress,
            clock,
            lag_max,
        }
    }
}

impl std::fmt::Debug for ProjectionLagCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionLagCheck")
            .field("lag_max", &self.lag_max)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl HealthCheck for ProjectionLagCheck {
    fn name(&self) -> &'static str {
        "projection_lag"
    }

    async fn check(&self) -> Result<(), StoreError> {
        let lag = self.progress.lag(self.clock.now());
        if lag > self.lag_max {
            return Err(StoreError::unavailable(ProjectorUnready::Behind {
                lag_ms: lag.as_millis(),
                lag_max_ms: self.lag_max.as_millis(),
            }));
        }
        Ok(())
    }
}
