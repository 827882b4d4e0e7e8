//! The batch flusher: emits the buffered batches of a pipeline when their window elapses.

use super::*;

pub(crate) async fn batch_flusher(
    rt: Arc<Runtime>,
    pipeline: String,
    period: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(period) => false,
            _ = stop.changed() => true,
        };
        let live = rt.live();
        if let Some(p) = live.project.pipelines.get(&pipeline) {
            rt.flush_batches(&live.project, p).await;
        }
        if stopping {
            return;
        }
    }
}
