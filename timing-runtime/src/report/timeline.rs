//! The captured events of every thread, as the public timeline: ids become names, ticks nanoseconds.

use crate::model::{Timeline, TimelineEvent};
use crate::record::{callsite, clock, recorder};
use crate::store::events::ThreadEvents;
use crate::store::registry;

/// The timeline of every thread since the last reset, the calling thread's newest events included.
pub(crate) fn timeline() -> Timeline {
    recorder::flush_this_thread();
    let threads = registry::collect_events();
    let (span_names, phase_names) = callsite::names();
    assemble(threads.iter().map(|(id, events)| (*id, events)), &span_names, &phase_names)
}

/// Turns the threads' events (thread id, events) into the public timeline.
fn assemble<'a>(
    threads: impl Iterator<Item = (u64, &'a ThreadEvents)>,
    span_names: &[&'static str],
    phase_names: &[&'static str],
) -> Timeline {
    let origin = clock::origin();
    let mut timeline = Timeline::default();
    for (thread, events) in threads {
        timeline.dropped += events.dropped;
        timeline.events.extend(events.events.iter().map(|event| TimelineEvent {
            thread,
            name: span_names.get(event.name as usize).map_or_else(|| "?".to_owned(), |name| (*name).to_owned()),
            phase: phase_names.get(event.phase as usize).filter(|name| !name.is_empty()).map(|name| (*name).to_owned()),
            start_ns: clock::to_ns(event.start.saturating_sub(origin)),
            duration_ns: clock::to_ns(event.end.saturating_sub(event.start)),
            step: (event.step != u64::MAX).then_some(event.step),
        }));
    }
    timeline.events.sort_by_key(|event| (event.start_ns, std::cmp::Reverse(event.duration_ns)));
    timeline
}
