//! Group commit: many small writes (message sends, queue transitions, inbound
//! messages) share one durable transaction and one fsync.
//!
//! Callers hand a job to [`Committer::run`] and await its result. A dedicated
//! thread takes every job that is waiting, runs them in order in one write
//! transaction, commits once (`Durability::Immediate`), then answers each:
//! a job's answer means its writes are on disk. Under load, batches grow by
//! themselves (the thread takes what arrived during the previous fsync);
//! alone, a job costs one commit as before.
//!
//! The rule every job follows: validate first, write after. A job that
//! returns an error must not have written anything, because the jobs beside
//! it in the batch are still committed. A storage error while writing fails
//! the whole batch (nothing of it is committed) and every job in it.

use std::sync::mpsc;
use std::sync::Arc;

use redb::WriteTransaction;
use tokio::sync::oneshot;

use super::{Store, StoreError, StoreResult};

/// A job: run in the batch's transaction (or told why there is none), it
/// returns what answers its caller once the commit's outcome is known.
type Job = Box<dyn FnOnce(Result<&WriteTransaction, StoreError>) -> Box<dyn FnOnce(StoreResult<()>) + Send> + Send>;

/// How long a batch waits at most for the callers it expects (see [`writer`]).
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// Largest number of jobs in one transaction.
const MAX_BATCH: usize = 1024;

/// The group-commit writer of one store (see the module doc).
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the writer thread; it ends when the committer is dropped.
    pub fn start(store: Arc<Store>) -> std::io::Result<Committer> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("wa-committer".into())
            .spawn(move || writer(store, rx))?;
        Ok(Committer { tx })
    }

    /// Runs `job` inside the next group transaction and returns its result
    /// once that transaction is durable (or failed).
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel::<StoreResult<T>>();
        let wrapped: Job = Box::new(move |txn| {
            let result = match txn {
                Ok(t) => job(t),
                Err(e) => Err(e),
            };
            Box::new(move |committed: StoreResult<()>| {
                let _ = reply.send(match committed {
                    Ok(()) => result,
                    Err(e) => Err(e),
                });
            })
        });
        self.tx
            .send(wrapped)
            .map_err(|_| StoreError::Failed("the store writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Failed("the store writer has stopped".into()))?
    }
}

/// The writer thread: batch, run, commit, answer.
///
/// How long to wait for company: the callers expected next are those that
/// waited through the last commit (already queued) plus those it just
/// answered (clients in a loop come straight back). Waiting for both, up to
/// [`LINGER`], keeps concurrent clients in one cohort per commit instead of
/// two alternating half-full ones. A lone caller (last batch of one,
/// nothing queued) is committed at once. The wait is not idle: the
/// transaction is open and each job runs as it arrives, so once the last
/// expected caller is in, only its own job stands before the commit.
fn writer(store: Arc<Store>, rx: mpsc::Receiver<Job>) {
    let mut last_batch = 1usize;
    loop {
        let mut jobs = Vec::new();
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let waiting = jobs.len();
        if jobs.is_empty() {
            match rx.recv() {
                Ok(j) => jobs.push(j),
                Err(_) => return,
            }
        }
        let expected = (waiting + last_batch).min(MAX_BATCH);
        let until = std::time::Instant::now() + LINGER;
        let txn = match store.write() {
            Ok(t) => t,
            Err(e) => {
                let msg = e.to_string();
                for job in jobs {
                    job(Err(same_error(&e, &msg)))(Ok(()));
                }
                continue;
            }
        };
        let mut answers = Vec::with_capacity(expected);
        for job in jobs {
            answers.push(job(Ok(&txn)));
        }
        while answers.len() < expected {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(job) => answers.push(job(Ok(&txn))),
                Err(_) => break,
            }
        }
        last_batch = answers.len();
        match store.commit(txn) {
            Ok(()) => answers.into_iter().for_each(|a| a(Ok(()))),
            Err(e) => {
                let msg = e.to_string();
                for a in answers {
                    a(Err(same_error(&e, &msg)));
                }
            }
        }
    }
}

/// A copy of a commit error for each job of the batch.
fn same_error(e: &StoreError, msg: &str) -> StoreError {
    match e {
        StoreError::DiskFull { free, min } => StoreError::DiskFull { free: *free, min: *min },
        StoreError::Failed(m) => StoreError::Failed(m.clone()),
        _ => StoreError::Failed(msg.to_string()),
    }
}
