//! Timeline capture: when switched on, every closed span of granularity `Detailed` becomes an event in a
//! bounded per-thread buffer (the oldest events are dropped, and counted, when it is full).
//!
//! A thread keeps its newest events locally and hands them over in blocks of 256, at the end of every
//! batch, when `timeline()` is called on it, and when it exits; events of a live thread's unfinished block
//! appear in the next timeline read after the hand-over.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// A span as it closed, in ticks and ids.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub start: u64,
    pub end: u64,
    pub name: u32,
    pub phase: u32,
    /// The index of the step it ran in on its thread, from 0; `u64::MAX` outside steps.
    pub step: u64,
}

/// Events handed over in one block.
pub(crate) const BLOCK: usize = 256;

/// Events kept per thread; 0 when capture is off.
static CAPACITY: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn capacity() -> usize {
    CAPACITY.load(Relaxed)
}

pub(crate) fn set_capacity(events: usize) {
    CAPACITY.store(events, Relaxed);
}

/// One thread's handed-over events, newest last.
#[derive(Debug, Default)]
pub(crate) struct ThreadEvents {
    pub events: VecDeque<Event>,
    pub dropped: u64,
}

impl ThreadEvents {
    /// Appends `events`, dropping the oldest beyond the capacity.
    pub fn extend(&mut self, events: impl Iterator<Item = Event>) {
        let capacity = capacity();
        for event in events {
            if capacity == 0 {
                self.dropped += 1;
                continue;
            }
            while self.events.len() >= capacity {
                self.events.pop_front();
                self.dropped += 1;
            }
            self.events.push_back(event);
        }
    }
}
