//! The hooks stateful steps use: dedupe keys, inventory reservations, batch buffers.
//!
//! The engine is pure; state lives behind [`State`]. [`MemoryState`] serves `railyard test`
//! and `railyard map`; the store crate provides durable implementations for `railyard run`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;

use super::Message;

/// Result of a reservation request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reservation {
    /// Everything reserved.
    Reserved,
    /// Some lines short: `(sku, wanted, available)`.
    Short(Vec<(String, i64, i64)>),
}

pub trait State {
    /// Records `key` and tells whether it was already seen within `ttl`.
    fn seen(&mut self, pipeline: &str, key: &str, ttl: Duration) -> bool;
    /// Reserves `qty` of each `sku` at `location`; `partial` reserves what is available when short.
    fn reserve(&mut self, location: &str, lines: &[(String, i64)], partial: bool) -> Reservation;
    /// Adds a message to the batch buffer `buffer`; returns the full batch when `count` is reached.
    fn batch_push(
        &mut self,
        buffer: &str,
        message: Message,
        count: Option<u32>,
    ) -> Option<Vec<Message>>;
    /// Removes and returns every buffered batch (time window elapsed, or end of input).
    fn batch_drain(&mut self, buffer_prefix: &str) -> Vec<(String, Vec<Message>)>;
    /// Called before step `step` (named as in failure reports, e.g. `steps[1] map`) of
    /// `pipeline` runs. The core has no clock: the runtime times steps for its metrics here.
    fn step_started(&mut self, _pipeline: &str, _step: &str) {}
    /// Called after the step ran over every message that reached it.
    fn step_finished(&mut self, _pipeline: &str, _step: &str, _counts: StepCounts) {}
}

/// What one step did with the messages that reached it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepCounts {
    /// Messages that entered the step.
    pub input: usize,
    /// Messages that left it for the next step (a split or batch changes the count).
    pub output: usize,
    /// Messages that failed in it (dead-lettered).
    pub failed: usize,
    /// Messages it dropped on purpose (filter, dedupe).
    pub dropped: usize,
}

/// In-memory state. Stock levels default to "unlimited" unless set with [`MemoryState::stock`].
#[derive(Default)]
pub struct MemoryState {
    seen: HashMap<(String, String), ()>,
    stock: HashMap<(String, String), i64>,
    batches: BTreeMap<String, Vec<Message>>,
}

impl MemoryState {
    pub fn new() -> MemoryState {
        MemoryState::default()
    }

    /// Sets the available quantity of `sku` at `location`.
    pub fn stock(&mut self, location: &str, sku: &str, qty: i64) {
        self.stock
            .insert((location.to_string(), sku.to_string()), qty);
    }
}

impl State for MemoryState {
    fn seen(&mut self, pipeline: &str, key: &str, _ttl: Duration) -> bool {
        self.seen
            .insert((pipeline.to_string(), key.to_string()), ())
            .is_some()
    }

    fn reserve(&mut self, location: &str, lines: &[(String, i64)], partial: bool) -> Reservation {
        let mut short = Vec::new();
        for (sku, qty) in lines {
            if let Some(&available) = self.stock.get(&(location.to_string(), sku.clone()))
                && available < *qty
            {
                short.push((sku.clone(), *qty, available));
            }
        }
        if short.is_empty() || partial {
            for (sku, qty) in lines {
                if let Some(available) = self.stock.get_mut(&(location.to_string(), sku.clone())) {
                    *available = (*available - qty).max(0);
                }
            }
        }
        if short.is_empty() {
            Reservation::Reserved
        } else {
            Reservation::Short(short)
        }
    }

    fn batch_push(
        &mut self,
        buffer: &str,
        message: Message,
        count: Option<u32>,
    ) -> Option<Vec<Message>> {
        let buf = self.batches.entry(buffer.to_string()).or_default();
        buf.push(message);
        match count {
            Some(n) if buf.len() >= n as usize => self.batches.remove(buffer),
            _ => None,
        }
    }

    fn batch_drain(&mut self, buffer_prefix: &str) -> Vec<(String, Vec<Message>)> {
        let keys: Vec<String> = self
            .batches
            .keys()
            .filter(|k| k.starts_with(buffer_prefix))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| self.batches.remove(&k).map(|v| (k, v)))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }
}

/// Turns a JSON value into an integer quantity, accepting numeric strings (Square sends "2").
pub fn as_qty(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
