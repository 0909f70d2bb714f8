//! The simulation's one source of randomness: a seeded generator shared by every virtual task.
//!
//! Every choice of a run (which command, which account, when to retry, which fault) is drawn here,
//! and the virtual tasks draw in an order fixed by the deterministic scheduler, so one seed replays
//! exactly. Probabilities are integers per mille: the workspace has no floats.

use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::time::Duration;

/// A seeded pseudo-random generator behind a mutex, so that tasks can share it.
#[derive(Debug)]
pub struct SimRng {
    generator: Mutex<fastrand::Rng>,
}

impl SimRng {
    pub fn new(seed: u64) -> Self {
        Self {
            generator: Mutex::new(fastrand::Rng::with_seed(seed)),
        }
    }

    fn with<T>(&self, draw: impl FnOnce(&mut fastrand::Rng) -> T) -> T {
        // Nothing panics while the generator is held, so a poisoned lock still holds a usable state.
        let mut generator = self
            .generator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        draw(&mut generator)
    }

    /// True with a probability of `per_mille` / 1000.
    pub fn chance(&self, per_mille: u32) -> bool {
        per_mille > 0 && self.with(|g| g.u32(0..1000)) < per_mille
    }

    /// A number in `range`.
    pub fn between(&self, range: RangeInclusive<u64>) -> u64 {
        self.with(|g| g.u64(range))
    }

    /// An index below `len` (which must be positive).
    pub fn index(&self, len: usize) -> usize {
        self.with(|g| g.usize(0..len))
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a, T>(&self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// A duration of up to `max`, in whole microseconds.
    pub fn duration_up_to(&self, max: Duration) -> Duration {
        let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.between(0..=max_us))
    }
}
