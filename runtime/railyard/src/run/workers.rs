//! The long-running tasks of the running configuration, one per input that is not a route
//! (topic and AMQP consumers, file drops, schedules, batch flushers): `Workers::reconcile`
//! starts what a new configuration adds and stops what it removes. Which task an input
//! needs is the input registry's answer (`inputs::worker`).

use super::*;

/// Starts one background task, given its stop signal.
pub(crate) type StartWorker =
    Box<dyn FnOnce(tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()>>;

/// The background tasks of the running configuration, by what they do: a task whose spec
/// disappears on reload is stopped (it finishes what it holds), a new spec gets a task, an
/// unchanged one keeps running untouched.
#[derive(Default)]
pub(crate) struct Workers {
    pub(crate) tasks: HashMap<
        String,
        (
            tokio::sync::watch::Sender<bool>,
            tokio::task::JoinHandle<()>,
        ),
    >,
    /// Workers a reload removed: told to stop, still finishing what they hold. A stop awaits
    /// them too, so nothing in flight is cut off by the process exiting.
    pub(crate) retired: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    pub(crate) fn reconcile(&mut self, rt: &Arc<Runtime>, live: &Live) {
        let mut wanted: HashMap<String, StartWorker> = HashMap::new();
        for p in live.project.pipelines.values() {
            if !live.running.contains(&p.name) {
                continue;
            }
            let name = p.name.clone();
            if let Some((key, start)) = inputs::worker(rt, p) {
                wanted.insert(key, start);
            }
            // Batches are emitted when their window elapses (checked at the shortest window of
            // the pipeline), and once more when the task stops.
            let period = p
                .steps
                .iter()
                .filter_map(|s| match s {
                    railyard_core::project::Step::Batch { window, .. } => {
                        Some(window.unwrap_or(Duration::from_secs(1)))
                    }
                    _ => None,
                })
                .min();
            if let Some(period) = period {
                let rt = rt.clone();
                let n = name.clone();
                wanted.insert(
                    format!("batch {name} {period:?}"),
                    Box::new(move |stop| tokio::spawn(batch_flusher(rt, n, period, stop))),
                );
            }
        }
        // Forget the connection state of consumers that are no longer configured.
        rt.brokers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|k, _| wanted.contains_key(k));
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some((stop, task)) = self.tasks.remove(&key) {
                // The task sees the signal, finishes what it holds and ends on its own.
                let _ = stop.send(true);
                self.retired.retain(|h| !h.is_finished());
                self.retired.push(task);
                tracing::info!(task = %key, "Stopped a worker no longer in the configuration.");
            }
        }
        for (key, start) in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.tasks.entry(key) {
                tracing::debug!(task = %slot.key(), "Started a worker.");
                let (tx, rx) = tokio::sync::watch::channel(false);
                slot.insert((tx, start(rx)));
            }
        }
    }

    pub(crate) async fn stop_all(self) {
        let mut handles = Vec::new();
        for (_, (stop, task)) in self.tasks {
            let _ = stop.send(true);
            handles.push(task);
        }
        for h in handles.into_iter().chain(self.retired) {
            let _ = h.await;
        }
    }
}
