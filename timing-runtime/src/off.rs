//! The `__private` items with the `timing` feature off: nothing is recorded and every call inlines away.

/// What a timed call stands for; unused with timing off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

    /// The same call site: with timing off, nothing is named.
    #[inline(always)]
    #[must_use]
    pub fn of_type(&'static self, _type_name: fn() -> &'static str) -> &'static Callsite {
        self
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

/// The call site itself, as `per_type`.
#[inline(always)]
#[must_use]
pub fn per_type_method(base: &'static Callsite, _types: &[&'static str]) -> &'static Callsite {
    base
}

/// The counting allocator with timing off: the allocator it wraps, and nothing else.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counting<A = std::alloc::System> {
    inner: A,
}

impl Counting<std::alloc::System> {
    /// Around the system allocator.
    #[must_use]
    pub const fn system() -> Self {
        Counting { inner: std::alloc::System }
    }
}

impl<A> Counting<A> {
    /// Around `inner`.
    pub const fn new(inner: A) -> Self {
        Counting { inner }
    }

    /// The allocator it wraps.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

#[allow(unsafe_code)]
// SAFETY: every call is passed unchanged to `inner`, whose guarantees carry over.
unsafe impl<A: std::alloc::GlobalAlloc> std::alloc::GlobalAlloc for Counting<A> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { self.inner.alloc(layout) }
    }

    #[inline(always)]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, block: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { self.inner.dealloc(block, layout) }
    }

    #[inline(always)]
    unsafe fn realloc(&self, block: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { self.inner.realloc(block, layout, new_size) }
    }
}
