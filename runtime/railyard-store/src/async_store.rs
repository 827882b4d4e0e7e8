//! The store for async callers: every call runs on tokio's blocking pool, so no async worker
//! thread ever waits on SQLite's write lock or an fsync. The state backends of later stores
//! (PostgreSQL) implement the same calls natively.

use std::sync::Arc;

use crate::{Store, StoreError};

/// A cheap, cloneable async handle over a shared [`Store`].
#[derive(Clone)]
pub struct AsyncStore {
    inner: Arc<Store>,
}

impl AsyncStore {
    pub fn new(store: Arc<Store>) -> AsyncStore {
        AsyncStore { inner: store }
    }

    /// The store itself, for callers already on a blocking thread.
    pub fn blocking(&self) -> &Arc<Store> {
        &self.inner
    }

    /// Runs `work` against the store on the blocking pool and returns its result. A task that
    /// panicked or was cancelled is [`StoreError::Task`].
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&store)).await?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[tokio::test]
    async fn calls_run_off_the_async_threads_and_panics_are_errors() {
        let store = AsyncStore::new(Arc::new(Store::open_in_memory().unwrap()));
        store.run(|s| s.subscribe("t", "g")).await.unwrap();
        store
            .run(|s| s.publish("t", &serde_json::json!(1)))
            .await
            .unwrap();
        assert_eq!(store.run(|s| s.depth("t", "g")).await.unwrap(), 1);
        let failed = store
            .run(|_| -> Result<(), StoreError> { panic!("a bug in a store call") })
            .await;
        assert!(matches!(failed, Err(StoreError::Task(_))), "{failed:?}");
        // The store still works after a task panicked.
        assert_eq!(store.run(|s| s.depth("t", "g")).await.unwrap(), 1);
    }
}
