//! The `__private` items with the `timing` feature off: nothing is recorded and every call inlines away.

/// What a timed call stands for; unused with timing off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An ordinary span.
    Span,
    /// One optimizer step.
    Step,
    /// One batch of steps.
    Batch,
}

/// A call site that records nothing.
#[derive(Debug)]
pub struct Callsite;

impl Callsite {
    /// A call site; its arguments are dropped.
    #[inline(always)]
    #[must_use]
    pub const fn new(
        _name: &'static str,
        _phase: Option<&'static str>,
        _kind: Kind,
        _module: &'static str,
        _file: &'static str,
        _line: u32,
    ) -> Self {
        Callsite
    }

    /// The same call site.
    #[inline(always)]
    #[must_use]
    pub const fn named_after_function(self) -> Self {
        self
    }

    /// Opens nothing.
    #[inline(always)]
    pub fn enter(&'static self) -> Guard {
        Guard
    }

    /// Opens nothing, whatever the kind.
    #[inline(always)]
    pub fn enter_as(&'static self, _kind: Kind) -> Guard {
        Guard
    }
}

/// A guard with nothing to close.
#[must_use = "the span closes when this guard is dropped"]
#[derive(Debug)]
pub struct Guard;

/// The open batch of a thread, to carry into work on other threads; with timing off, there is none.
#[derive(Clone, Debug)]
pub struct BatchHandle;

impl BatchHandle {
    /// Runs `work`.
    #[inline(always)]
    pub fn in_scope<R>(&self, work: impl FnOnce() -> R) -> R {
        work()
    }
}

/// The call site itself: with timing off, instantiations need no spans of their own.
#[inline(always)]
#[must_use]
pub fn per_type(base: &'static Callsite, _types: &[&'static str]) -> &'static Callsite {
    base
}
