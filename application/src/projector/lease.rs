//! Projecting under a lease: stand by while another projector holds it, project while this one
//! does, and stand down at once when the lease is found lost.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::ports::{CONFIRM_TIMEOUT, HeldLease, LeaseLost, ProjectorLease};

/// How often the lease is asked for and confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSchedule {
    /// Between two attempts of a standby (and after a failed attempt): how soon it takes over once
    /// the holder is gone.
    pub standby_poll: Duration,
    /// Between two confirmations by the holder: how long it may go on after losing the lease.
    pub confirm_every: Duration,
}

impl Default for LeaseSchedule {
    fn default() -> Self {
        Self {
            standby_poll: Duration::from_secs(1),
            confirm_every: Duration::from_secs(1),
        }
    }
}

/// Why projecting under the lease ended.
#[derive(Debug)]
pub enum LeaseEnded {
    /// Shutdown was asked for; the lease was released.
    Shutdown,
    /// The lease was lost; the work was stopped. The caller may stand by again.
    Lost(LeaseLost),
}

/// Waits, polling every `schedule.standby_poll`, until the lease is held (`Some`) or `shutdown`
/// turns true (`None`). Runs for as long as the process stands by: each wait is bounded, and
/// shutdown ends it.
pub async fn acquire_lease(
    lease: &dyn ProjectorLease,
    schedule: LeaseSchedule,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Box<dyn HeldLease>> {
    let mut told_standing_by = false;
    loop {
        if *shutdown.borrow() {
            return None;
        }
        match lease.try_acquire().await {
            Ok(Some(held)) => {
                tracing::info!("projector lease acquired; projecting");
                return Some(held);
            }
            Ok(None) if !told_standing_by => {
                tracing::info!("standing by: another projector holds the lease");
                told_standing_by = true;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot ask for the projector lease; trying again");
            }
        }
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                // A dropped sender means nobody can stop us any more: stop now rather than never.
                if changed.is_err() {
                    return None;
                }
            }
            () = tokio::time::sleep(schedule.standby_poll) => {}
        }
    }
}

/// Runs `work` with a stop signal of its own that turns true when `shutdown` does or as soon as
/// `held` is found lost (checked every `schedule.confirm_every`), then waits for `work` to finish.
pub async fn project_while_held<W, F>(
    held: &dyn HeldLease,
    schedule: LeaseSchedule,
    shutdown: &mut watch::Receiver<bool>,
    work: W,
) -> LeaseEnded
where
    W: FnOnce(watch::Receiver<bool>) -> F,
    F: Future<Output = ()>,
{
    let (stop_work, work_stopped) = watch::channel(false);
    let work = work(work_stopped);
    tokio::pin!(work);
    let ended = loop {
        if *shutdown.borrow() {
            break LeaseEnded::Shutdown;
        }
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break LeaseEnded::Shutdown;
                }
            }
            // The work ending on its own (it should not) ends the holding too: the lease is not
            // kept by a process that no longer projects.
            () = &mut work => return LeaseEnded::Shutdown,
            () = tokio::time::sleep(schedule.confirm_every) => {
                let confirmed = tokio::time::timeout(CONFIRM_TIMEOUT, held.confirm())
                    .await
                    .unwrap_or(Err(LeaseLost::Unconfirmed(CONFIRM_TIMEOUT)));
                if let Err(lost) = confirmed {
                    tracing::warn!(error = %lost, "projector lease lost; standing down");
                    break LeaseEnded::Lost(lost);
                }
            }
        }
    };
    let _ = stop_work.send(true);
    work.await;
    ended
}

/// Stands by until the lease is held, projects with `work` while it is, stands by again if it is
/// lost, and returns on shutdown. `work` is called once per time the lease is acquired, with the
/// signal that tells it to stop.
pub async fn project_under_lease<W, F>(
    lease: &dyn ProjectorLease,
    schedule: LeaseSchedule,
    mut shutdown: watch::Receiver<bool>,
    mut work: W,
) where
    W: FnMut(watch::Receiver<bool>) -> F,
    F: Future<Output = ()>,
{
    // One round per lease acquired; shutdown ends the loop from either wait.
    while let Some(held) = acquire_lease(lease, schedule, &mut shutdown).await {
        match project_while_held(held.as_ref(), schedule, &mut shutdown, &mut work).await {
            LeaseEnded::Shutdown => {
                drop(held);
                tracing::info!("projector lease released");
                return;
            }
            LeaseEnded::Lost(_) => drop(held),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::memory::InMemoryProjectorLease;

    /// Work that counts how often it ran and how many of its runs are going on now.
    #[derive(Default)]
    struct Counted {
        started: AtomicU32,
        running: AtomicU32,
    }

    async fn counted_work(counted: Arc<Counted>, mut stop: watch::Receiver<bool>) {
        counted.started.fetch_add(1, Ordering::SeqCst);
        counted.running.fetch_add(1, Ordering::SeqCst);
        let _ = stop.wait_for(|stopped| *stopped).await;
        counted.running.fetch_sub(1, Ordering::SeqCst);
    }

    fn spawn_projector(
        lease: &InMemoryProjectorLease,
        counted: &Arc<Counted>,
    ) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (shutdown, stopped) = watch::channel(false);
        let lease = lease.clone();
        let counted = Arc::clone(counted);
        let task = tokio::spawn(async move {
            project_under_lease(&lease, LeaseSchedule::default(), stopped, |stop| {
                counted_work(Arc::clone(&counted), stop)
            })
            .await;
        });
        (shutdown, task)
    }

    #[tokio::test(start_paused = true)]
    async fn the_standby_projects_only_after_the_holder_shuts_down() {
        let lease = InMemoryProjectorLease::new();
        let first = Arc::new(Counted::default());
        let second = Arc::new(Counted::default());
        let (stop_first, first_task) = spawn_projector(&lease, &first);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (stop_second, second_task) = spawn_projector(&lease, &second);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(first.running.load(Ordering::SeqCst), 1);
        assert_eq!(second.started.load(Ordering::SeqCst), 0);

        stop_first.send(true).expect("first listens");
        first_task.await.expect("first stops");
        assert_eq!(first.running.load(Ordering::SeqCst), 0);
        // Within one standby poll, the second takes over.
        tokio::time::sleep(LeaseSchedule::default().standby_poll * 2).await;
        assert_eq!(second.running.load(Ordering::SeqCst), 1);

        stop_second.send(true).expect("second listens");
        second_task.await.expect("second stops");
        assert!(
            lease.try_acquire().await.expect("asked").is_some(),
            "shutdown releases the lease"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_that_loses_the_lease_stops_its_work_and_stands_by_again() {
        let lease = InMemoryProjectorLease::new();
        let counted = Arc::new(Counted::default());
        let (shutdown, task) = spawn_projector(&lease, &counted);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(counted.running.load(Ordering::SeqCst), 1);

        // Another takes the lease the moment it is revoked, so the first must stand down and wait.
        lease.revoke();
        let other = lease.try_acquire().await.expect("asked").expect("free");
        tokio::time::sleep(LeaseSchedule::default().confirm_every * 2).await;
        assert_eq!(counted.running.load(Ordering::SeqCst), 0, "stood down");
        assert_eq!(counted.started.load(Ordering::SeqCst), 1);

        drop(other);
        tokio::time::sleep(LeaseSchedule::default().standby_poll * 2).await;
        assert_eq!(counted.running.load(Ordering::SeqCst), 1, "took it back");
        assert_eq!(counted.started.load(Ordering::SeqCst), 2);

        shutdown.send(true).expect("listens");
        task.await.expect("stops");
        assert_eq!(counted.running.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_while_standing_by_returns_without_projecting() {
        let lease = InMemoryProjectorLease::new();
        let _holder = lease.try_acquire().await.expect("asked").expect("free");
        let counted = Arc::new(Counted::default());
        let (shutdown, task) = spawn_projector(&lease, &counted);
        tokio::time::sleep(Duration::from_secs(5)).await;
        shutdown.send(true).expect("listens");
        task.await.expect("stops");
        assert_eq!(counted.started.load(Ordering::SeqCst), 0);
    }
}
