//! One long-lived thread for the work that builds serving models: loading the active model at
//! start, training, and activating a saved version.
//!
//! Why not tokio's blocking pool: glibc's allocator gives each thread its own arena and keeps the
//! memory freed in an arena for that arena. When the start-up load ran on the main thread and each
//! Train on whichever blocking thread tokio picked, every arena kept the peak of the models built
//! in it (a model being built beside the live one is two models at once), and the peaks added up.
//! Built on one thread, every model comes from one arena, which reuses what the model before last
//! freed (`bash bench/memory.sh` measures it; the README's "Serving memory" has the figures). Jobs
//! run one at a time, in order; a job that panics is reported to its caller and the thread goes on
//! with the next.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use super::errors::ServiceError;

type Job = Box<dyn FnOnce() + Send>;

/// The handle to the model thread; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct ModelThread {
    jobs: mpsc::Sender<Job>,
}

impl ModelThread {
    /// Starts the thread.
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("topicd-models".into())
            .spawn(move || {
                // Ends when every sender is gone.
                for job in queue {
                    job();
                }
            })?;
        Ok(Self { jobs })
    }

    /// Queues `work` and returns where its result will arrive: `Err` with what went wrong if it
    /// panicked or the thread is gone.
    fn submit<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce() -> T + Send + 'static,
        reply: impl FnOnce(Result<T, ServiceError>) + Send + 'static,
    ) -> Result<(), ServiceError> {
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(work))
                .map_err(|_| ServiceError::Internal(format!("{what} failed: it panicked")));
            reply(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| ServiceError::Internal(format!("{what} failed: the model thread is gone")))
    }

    /// Runs `work` on the model thread and waits for it without blocking the runtime. The work
    /// finishes even if the caller stops waiting (a cancelled request, a deadline).
    pub async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.submit(what, work, move |result| {
            // The caller may have stopped waiting; the work is done either way.
            let _ = sender.send(result);
        })?;
        receiver
            .await
            .map_err(|_| ServiceError::Internal(format!("{what} failed: no result came back")))?
            .and_then(|result| result)
    }

    /// Runs `work` on the model thread and blocks the calling thread until it is done (for start-up,
    /// before the server takes requests).
    pub fn run_blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let (sender, receiver) = mpsc::channel();
        self.submit(what, work, move |result| {
            let _ = sender.send(result);
        })?;
        receiver
            .recv()
            .map_err(|_| ServiceError::Internal(format!("{what} failed: no result came back")))?
            .and_then(|result| result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_order_on_one_thread_and_a_panic_is_reported() {
        let thread = ModelThread::start().expect("thread starts");
        let first = thread
            .run_blocking("first", || Ok(std::thread::current().id()))
            .expect("runs");
        let panicked =
            thread.run_blocking("the panicking job", || -> Result<(), _> { panic!("boom") });
        match panicked {
            Err(ServiceError::Internal(message)) => {
                assert!(message.contains("the panicking job failed"), "{message}")
            }
            other => panic!("expected an internal error, got {other:?}"),
        }
        let after = thread
            .run_blocking("after", || Ok(std::thread::current().id()))
            .expect("the thread survives a panicking job");
        assert_eq!(first, after);
        assert_ne!(first, std::thread::current().id());
    }

    #[tokio::test]
    async fn async_callers_get_results_and_errors() {
        let thread = ModelThread::start().expect("thread starts");
        assert_eq!(thread.run("sum", || Ok(2 + 2)).await.expect("runs"), 4);
        let err = thread
            .run("failing", || -> Result<(), _> {
                Err(ServiceError::Precondition("no".into()))
            })
            .await
            .expect_err("errors pass through");
        assert!(matches!(err, ServiceError::Precondition(_)));
    }
}
