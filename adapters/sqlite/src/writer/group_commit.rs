//! The writer thread's loop: take a batch of jobs, run each in its own savepoint inside one
//! `BEGIN IMMEDIATE` transaction, COMMIT once, then answer every job.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{Counters, GroupCommit, WriteFailure, WriterError};

/// What the writer thread is sent.
pub(super) enum Message {
    Job(Box<dyn Job>),
    /// Finish the batch in hand and end.
    Stop,
}

/// A write, with its result type erased so that jobs of every kind share one queue.
pub(super) trait Job: Send {
    /// Runs the job on `connection`, inside its savepoint. True if it succeeded (its writes are
    /// kept), false if it refused (they are rolled back to the savepoint).
    fn run(&mut self, connection: &Connection) -> bool;

    /// Answers the submitter once the batch has ended as `end` says.
    fn answer(self: Box<Self>, end: &BatchEnd);
}

/// How a batch ended, for the jobs that ran in it.
pub(super) enum BatchEnd {
    Committed,
    /// The transaction was rolled back (or never began): nothing of the batch is written.
    NotWritten(Arc<WriterError>),
    /// COMMIT failed: the batch may or may not be on disk.
    OutcomeUnknown(Arc<WriterError>),
}

pub(super) struct TypedJob<T, E, F> {
    work: Option<F>,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, WriteFailure<E>>>,
}

impl<T, E, F> TypedJob<T, E, F> {
    pub(super) fn new(work: F, reply: oneshot::Sender<Result<T, WriteFailure<E>>>) -> Self {
        Self {
            work: Some(work),
            result: None,
            reply,
        }
    }
}

impl<T, E, F> Job for TypedJob<T, E, F>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send,
    T: Send,
    E: Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(connection);
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn answer(self: Box<Self>, end: &BatchEnd) {
        let answer = match (self.result, end) {
            // A refusal stands whatever became of the batch: its writes were rolled back already.
            (Some(Err(error)), _) => Err(WriteFailure::Refused(error)),
            (Some(Ok(value)), BatchEnd::Committed) => Ok(value),
            (Some(Ok(_)), BatchEnd::OutcomeUnknown(error)) => {
                Err(WriteFailure::OutcomeUnknown(Arc::clone(error)))
            }
            (Some(Ok(_)) | None, BatchEnd::NotWritten(error)) => {
                Err(WriteFailure::NotWritten(Arc::clone(error)))
            }
            (None, _) => Err(WriteFailure::NotWritten(Arc::new(WriterError::Stopped))),
        };
        // The submitter may have stopped waiting (a cancelled request); the write stands anyway.
        let _ = self.reply.send(answer);
    }
}

/// The thread's loop, until it is told to stop or every sender is gone.
pub(super) fn run(
    connection: &Connection,
    receiver: &flume::Receiver<Message>,
    group_commit: GroupCommit,
    counters: &Counters,
) {
    // Jobs taken from the queue but not yet run: a batch that SQLite aborted hands its unrun jobs
    // to the next one.
    let mut pending: VecDeque<Box<dyn Job>> = VecDeque::new();
    let mut stopping = false;
    while !stopping {
        if pending.is_empty() {
            match receiver.recv() {
                Ok(Message::Job(job)) => pending.push_back(job),
                Ok(Message::Stop) | Err(_) => break,
            }
        }
        let deadline = Instant::now() + group_commit.max_wait;
        while pending.len() < group_commit.max_batch {
            let next = if group_commit.max_wait.is_zero() {
                receiver.try_recv().ok()
            } else {
                receiver.recv_deadline(deadline).ok()
            };
            match next {
                Some(Message::Job(job)) => pending.push_back(job),
                Some(Message::Stop) => {
                    stopping = true;
                    break;
                }
                None => break,
            }
        }
        let take = pending.len().min(group_commit.max_batch);
        let batch: Vec<Box<dyn Job>> = pending.drain(..take).collect();
        let unrun = run_batch(connection, batch, counters);
        for job in unrun.into_iter().rev() {
            pending.push_front(job);
        }
    }
    // Told to stop with jobs in hand: they were never run, so nothing of them is written.
    let stopped = BatchEnd::NotWritten(Arc::new(WriterError::Stopped));
    for job in pending {
        job.answer(&stopped);
    }
}

/// One transaction. Returns the jobs it did not get to run (after SQLite rolled the transaction
/// back on its own), for the next batch.
fn run_batch(
    connection: &Connection,
    batch: Vec<Box<dyn Job>>,
    counters: &Counters,
) -> Vec<Box<dyn Job>> {
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE") {
        answer_all(
            batch,
            &BatchEnd::NotWritten(Arc::new(WriterError::Begin(error))),
        );
        return Vec::new();
    }
    let size = batch.len();
    let mut ran: Vec<Box<dyn Job>> = Vec::with_capacity(size);
    let mut jobs = batch.into_iter();
    while let Some(mut job) = jobs.next() {
        if let Err(error) = execute(connection, "SAVEPOINT job") {
            ran.push(job);
            abandon(connection, ran, WriterError::Savepoint(error));
            return jobs.collect();
        }
        let succeeded = job.run(connection);
        ran.push(job);
        // Some errors (a full disk, an I/O error) make SQLite roll the whole transaction back by
        // itself: the jobs before this one are then not written, and those after it go to the
        // next batch.
        if connection.is_autocommit() {
            answer_all(
                ran,
                &BatchEnd::NotWritten(Arc::new(WriterError::TransactionLost)),
            );
            return jobs.collect();
        }
        let closed = if succeeded {
            execute(connection, "RELEASE job")
        } else {
            execute(connection, "ROLLBACK TO job").and_then(|()| execute(connection, "RELEASE job"))
        };
        if let Err(error) = closed {
            abandon(connection, ran, WriterError::Savepoint(error));
            return jobs.collect();
        }
    }
    match execute(connection, "COMMIT") {
        Ok(()) => {
            counters.committed(size);
            answer_all(ran, &BatchEnd::Committed);
        }
        Err(error) => {
            // A failed COMMIT may leave the transaction open; end it, so the next batch can begin.
            if !connection.is_autocommit() {
                let _ = execute(connection, "ROLLBACK");
            }
            answer_all(
                ran,
                &BatchEnd::OutcomeUnknown(Arc::new(WriterError::Commit(error))),
            );
        }
    }
    Vec::new()
}

/// Rolls the transaction back after a savepoint statement failed: none of the batch is written.
fn abandon(connection: &Connection, ran: Vec<Box<dyn Job>>, error: WriterError) {
    if !connection.is_autocommit() {
        let _ = execute(connection, "ROLLBACK");
    }
    answer_all(ran, &BatchEnd::NotWritten(Arc::new(error)));
}

fn answer_all(jobs: Vec<Box<dyn Job>>, end: &BatchEnd) {
    for job in jobs {
        job.answer(end);
    }
}

/// A control statement, prepared once per connection.
fn execute(connection: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    connection.prepare_cached(sql)?.execute([]).map(drop)
}
