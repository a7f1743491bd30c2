//! One `static` per timed function: its names, and the small ids they are interned to on first call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use parking_lot::Mutex;

use crate::model::TimingGranularity;
use crate::store::allocs;
pub(crate) use crate::store::steps::FAST_PHASES;

/// What a call of a timed function stands for in the training loop.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An ordinary span.
    Span,
    /// One optimizer step (`#[timed(step)]`).
    Step,
    /// One batch of steps (`#[timed(batch)]`).
    Batch,
}

impl Kind {
    /// The least granularity (as its bits) at which calls of this kind are recorded.
    #[inline(always)]
    pub(crate) const fn min_level(self) -> u64 {
        match self {
            Kind::Span => TimingGranularity::Detailed.to_bits(),
            Kind::Step | Kind::Batch => TimingGranularity::Batch.to_bits(),
        }
    }
}

/// The data every call of one timed function shares. Made by `#[timed]` as a `static`; generic functions
/// share one call site across their instantiations, unless `per_type` makes one for each.
#[doc(hidden)]
#[derive(Debug)]
pub struct Callsite {
    pub(crate) name: &'static str,
    pub(crate) phase: Option<&'static str>,
    pub(crate) kind: Kind,
    pub(crate) module: &'static str,
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    /// Whether `name` is the function's own name (not one given with `name = ...`): then two functions of
    /// one name are two spans, told apart in reports by their module or place.
    own_name: bool,
    /// `0` until first call, then `REGISTERED | phase_id << 32 | name_id`, with `FAST` too when both ids fit
    /// the hot path's tables.
    ids: AtomicU64,
}

const REGISTERED: u64 = 1 << 63;
/// Set in a call site's ids when its name and phase ids index the hot path's tables.
pub(crate) const FAST: u64 = 1 << 62;
const PHASE_BITS: u64 = 0x3fff_ffff;
/// Span name ids below this have a slot in the hot path's table of open calls.
pub(crate) const FAST_NAMES: usize = 4096;

/// The number of phase ids given out so far, the empty "no phase" (0) included.
static PHASE_COUNT: AtomicUsize = AtomicUsize::new(1);

/// How many phase ids there are: every phase id in use is below it.
pub(crate) fn phase_count() -> usize {
    PHASE_COUNT.load(Acquire)
}

/// How many span name ids there are: every span name id in use is below it.
pub(crate) fn name_count() -> usize {
    NAMES.lock().as_ref().map_or(0, |names| names.spans.len())
}

/// A call site's interned ids. Phase id 0 means "no phase of its own"; span name id 0 is never given out,
/// so that a zeroed cache key of the hot path matches no call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ids {
    pub name: u32,
    pub phase: u32,
}

impl Ids {
    #[inline(always)]
    #[allow(clippy::cast_possible_truncation)]
    pub(crate) const fn unpack(packed: u64) -> Ids {
        Ids { name: packed as u32, phase: ((packed >> 32) & PHASE_BITS) as u32 }
    }
}

impl Callsite {
    /// A call site; `#[timed]` makes one per function.
    #[must_use]
    pub const fn new(
        name: &'static str,
        phase: Option<&'static str>,
        kind: Kind,
        module: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        Callsite { name, phase, kind, module, file, line, own_name: false, ids: AtomicU64::new(0) }
    }

    /// The call site as one named after its function, as `#[timed]` makes it without `name = ...`:
    /// functions of the same name in different places are different spans.
    #[must_use]
    pub const fn named_after_function(self) -> Self {
        Callsite { own_name: true, ..self }
    }

    #[inline(always)]
    #[cfg_attr(not(feature = "timing"), allow(dead_code))]
    pub(crate) fn ids(&'static self) -> Ids {
        let ids = self.ids.load(Acquire);
        if ids & REGISTERED != 0 {
            return Ids::unpack(ids);
        }
        self.register()
    }

    /// Its span name id, once it has been called.
    #[cfg_attr(not(feature = "timing"), allow(dead_code))]
    pub(crate) fn registered_name(&self) -> Option<u32> {
        let ids = self.ids.load(Acquire);
        (ids & REGISTERED != 0).then(|| Ids::unpack(ids).name)
    }

    /// The ids as stored: 0, or `Ids` packed with the `REGISTERED` and `FAST` bits.
    #[inline(always)]
    pub(crate) fn packed_ids(&self) -> u64 {
        self.ids.load(Acquire)
    }

    /// This call site, named `Type::method` after the type that `type_name` names (a method's `Self`) when it
    /// is first called: `#[timed]` on a method knows that it is one (a `self` receiver, `Self` in its
    /// signature, its `impl` timed) but not the type's name, which only the compiler has. After the first
    /// call, one load and a test.
    #[inline(always)]
    #[must_use]
    pub fn of_type(&'static self, type_name: fn() -> &'static str) -> &'static Callsite {
        if self.ids.load(Relaxed) & REGISTERED == 0 {
            self.register_of_type(type_name());
        }
        self
    }

    #[cold]
    #[inline(never)]
    fn register_of_type(&'static self, type_name: &'static str) {
        let _quiet = allocs::Quiet::new();
        let name: &'static str = Box::leak(format!("{}::{}", type_only(type_name), self.name).into_boxed_str());
        self.register_as(name);
    }

    #[cold]
    #[inline(never)]
    fn register(&'static self) -> Ids {
        self.register_as(self.name)
    }

    fn register_as(&'static self, name: &'static str) -> Ids {
        // The name tables' allocations are the runtime's, not the caller's.
        let _quiet = allocs::Quiet::new();
        let ids = {
            let mut names = NAMES.lock();
            let names = names.get_or_insert_with(Names::default);
            let origin = self.own_name.then_some((self.module, self.file, self.line));
            let ids =
                Ids { name: names.span_id(name, origin), phase: self.phase.map_or(0, |phase| names.phase_id(phase)) };
            if self.kind == Kind::Step && !names.steps.contains(&ids.name) {
                names.steps.push(ids.name);
            }
            ids
        };
        let fast = if (ids.name as usize) < FAST_NAMES && (ids.phase as usize) < FAST_PHASES { FAST } else { 0 };
        // Release, with the acquiring loads of the ids: a thread that records with these ids sees the phase
        // count that includes them, so that a step zeroes and reads their phase's entries.
        self.ids.store(REGISTERED | fast | u64::from(ids.phase) << 32 | u64::from(ids.name), Release);
        ids
    }

    /// Where the function is, for reports that point at code.
    #[must_use]
    pub fn location(&self) -> (&'static str, &'static str, u32) {
        (self.module, self.file, self.line)
    }
}

/// Where a function named after itself is: module path, file and line.
type Origin = (&'static str, &'static str, u32);

/// Span names and phase names, each interned once per process; ids index the per-thread tables.
#[derive(Default)]
pub(crate) struct Names {
    /// By span id, as reports show them; index 0 is an empty name that no call site has.
    spans: Vec<&'static str>,
    /// By span id: the name as written, and where the function is for a function named after itself.
    written: Vec<(&'static str, Option<Origin>)>,
    span_ids: HashMap<(&'static str, Option<Origin>), u32>,
    /// Index 0 is the empty "no phase".
    phases: Vec<&'static str>,
    phase_ids: HashMap<&'static str, u32>,
    /// The span name ids of step call sites.
    steps: Vec<u32>,
}

static NAMES: Mutex<Option<Names>> = Mutex::new(None);

impl Names {
    /// The id of span `name`, of a function at `origin` when it is named after itself: one id per function
    /// then, one per name for names given with `name = ...` (which merge what they name, as asked).
    fn span_id(&mut self, name: &'static str, origin: Option<Origin>) -> u32 {
        if self.spans.is_empty() {
            self.spans.push("");
            self.written.push(("", None));
        }
        if let Some(id) = self.span_ids.get(&(name, origin)) {
            return *id;
        }
        let id = u32::try_from(self.spans.len()).unwrap_or(u32::MAX);
        self.span_ids.insert((name, origin), id);
        self.spans.push(name);
        self.written.push((name, origin));
        self.tell_apart(name);
        id
    }

    /// Gives the spans written `name` names that tell them apart, when there are several: the module path
    /// before the name where their modules differ (`model::step`), else the file and line after it. Made
    /// once per new span (cold), and kept, so that reports only copy them.
    fn tell_apart(&mut self, name: &'static str) {
        let same: Vec<usize> = (0..self.written.len()).filter(|id| self.written[*id].0 == name).collect();
        if same.len() < 2 {
            return;
        }
        let modules: Vec<&str> = same.iter().filter_map(|id| self.written[*id].1.map(|(module, ..)| module)).collect();
        let distinct_modules =
            modules.iter().all(|module| modules.iter().filter(|other| *other == module).count() == 1);
        for id in same {
            let shown = match self.written[id].1 {
                None => continue,
                Some((module, ..)) if distinct_modules => format!("{}::{name}", shortest_unique(module, &modules)),
                Some((_, file, line)) => format!("{name} ({file}:{line})"),
            };
            self.spans[id] = Box::leak(shown.into_boxed_str());
        }
    }

    /// Each span's full path, by id: `module::name` for a function named after itself whose shown name is
    /// shorter (told apart from another of its name by the end of its module path only); `None` otherwise.
    fn full_paths(&self) -> Vec<Option<String>> {
        self.written
            .iter()
            .zip(&self.spans)
            .map(|((name, origin), shown)| {
                let full = format!("{}::{name}", origin.as_ref()?.0);
                (full != *shown && !shown.ends_with(')')).then_some(full)
            })
            .collect()
    }

    fn phase_id(&mut self, phase: &'static str) -> u32 {
        if self.phases.is_empty() {
            self.phases.push("");
        }
        let id = intern(&mut self.phases, &mut self.phase_ids, phase);
        PHASE_COUNT.store(self.phases.len(), Relaxed);
        id
    }
}

fn intern(list: &mut Vec<&'static str>, ids: &mut HashMap<&'static str, u32>, name: &'static str) -> u32 {
    *ids.entry(name).or_insert_with(|| {
        list.push(name);
        u32::try_from(list.len() - 1).unwrap_or(u32::MAX)
    })
}

/// Call sites made at run time, one per name and kind, for `batch` and `start_batch` (which take their label
/// as an argument, chosen at run time): leaked once each, so that they are `'static` as the ones `#[timed]`
/// declares. At most `MAX_LABELS`: a run that makes a label per request would otherwise grow without limit.
/// By label, a call site for each `Kind` (by its discriminant).
static DYNAMIC: Mutex<Option<HashMap<Box<str>, ByKind>>> = Mutex::new(None);

/// A label's call sites, by `Kind`.
type ByKind = [Option<&'static Callsite>; 3];

/// Distinct labels kept apart; the batches of any label beyond them share one span, `OTHER_LABELS`.
pub(crate) const MAX_LABELS: usize = 1_024;
/// The span of batches whose label came after the first `MAX_LABELS`.
pub(crate) const OTHER_LABELS: &str = "other batch labels (beyond 1,024)";

/// The call site of `name` and `kind`, made on first use.
#[cfg_attr(not(feature = "timing"), allow(dead_code))]
pub(crate) fn dynamic(name: &str, kind: Kind) -> &'static Callsite {
    let _quiet = allocs::Quiet::new();
    let mut sites = DYNAMIC.lock();
    let sites = sites.get_or_insert_with(HashMap::new);
    // Looked up by the label as given: a known label, at every batch, allocates nothing.
    if let Some(site) = sites.get(name).and_then(|by_kind| by_kind[kind as usize]) {
        return site;
    }
    // A label known for another kind keeps its name; a new one is kept if there is room.
    let known = sites.get(name).and_then(|by_kind| by_kind.iter().flatten().next().map(|site| site.name));
    let name: &'static str = match known {
        Some(known) => known,
        None if sites.len() < MAX_LABELS => Box::leak(Box::<str>::from(name)),
        None => OTHER_LABELS,
    };
    let by_kind = sites.entry(name.into()).or_default();
    by_kind[kind as usize]
        .get_or_insert_with(|| Box::leak(Box::new(Callsite::new(name, None, kind, "timing_runtime::batch", "", 0))))
}

/// The span of `recompute`, whose steps are replayed, not steps of the run.
#[cfg_attr(not(feature = "timing"), allow(dead_code))]
pub(crate) fn recompute() -> &'static Callsite {
    static RECOMPUTE: OnceLock<&'static Callsite> = OnceLock::new();
    RECOMPUTE.get_or_init(|| dynamic("recompute", Kind::Span))
}

/// The name of span id `id`, as reports show it.
#[cfg_attr(not(feature = "timing"), allow(dead_code))]
pub(crate) fn span_name(id: u32) -> Option<&'static str> {
    NAMES.lock().as_ref().and_then(|names| names.spans.get(id as usize).copied())
}

/// The call site of one instantiation of a `per_type` function: `base` named with `types`, the names of its
/// type arguments (`Scene::new<f64>`), made on first use and kept. Found in a small per-thread list (no lock,
/// no allocation: a type's name is one `'static` string, whose address stands for it), else in the
/// process-wide table under its lock: the documented cost of `per_type`.
pub fn per_type(base: &'static Callsite, types: &[&'static str]) -> &'static Callsite {
    per_type_of(base, false, types)
}

/// `per_type` for a method whose `Self` is the first of `types`: the span of `Scene<f64>` apart from that
/// of `Scene<Dual>`, named `Scene<f64>::new` (with the method's own type arguments after it, if any).
pub fn per_type_method(base: &'static Callsite, types: &[&'static str]) -> &'static Callsite {
    per_type_of(base, true, types)
}

fn per_type_of(base: &'static Callsite, method: bool, types: &[&'static str]) -> &'static Callsite {
    thread_local! {
        static KNOWN: RefCell<Vec<(usize, Vec<usize>, &'static Callsite)>> = const { RefCell::new(Vec::new()) };
    }
    let base_address = std::ptr::from_ref(base) as usize;
    // A name's address and length: two types' names may share an address (one a prefix of the other).
    let at = |name: &&'static str| (name.as_ptr() as usize) << 16 ^ name.len();
    let same = |addresses: &[usize]| addresses.iter().copied().eq(types.iter().map(at));
    let known = KNOWN.try_with(|known| {
        let known = known.try_borrow().ok()?;
        known.iter().find(|(at, addresses, _)| *at == base_address && same(addresses)).map(|(_, _, site)| *site)
    });
    if let Ok(Some(site)) = known {
        return site;
    }
    // The tables' allocations are the runtime's.
    let _quiet = allocs::Quiet::new();
    let addresses: Vec<usize> = types.iter().map(at).collect();
    let site = per_type_shared(base, base_address, &addresses, types, method);
    let _ = KNOWN.try_with(|known| {
        if let Ok(mut known) = known.try_borrow_mut() {
            known.push((base_address, addresses, site));
        }
    });
    site
}

fn per_type_shared(
    base: &'static Callsite,
    base_address: usize,
    addresses: &[usize],
    types: &[&'static str],
    method: bool,
) -> &'static Callsite {
    type Key = (usize, Vec<usize>);
    static SITES: Mutex<Option<HashMap<Key, &'static Callsite>>> = Mutex::new(None);
    let mut sites = SITES.lock();
    let sites = sites.get_or_insert_with(HashMap::new);
    let key: Key = (base_address, addresses.to_vec());
    if let Some(site) = sites.get(&key) {
        return site;
    }
    let shown: Vec<String> = types.iter().map(|name| short_type_name(name)).collect();
    let name = match (method, shown.split_first()) {
        (true, Some((own, []))) => format!("{own}::{}", base.name),
        (true, Some((own, rest))) => format!("{own}::{}<{}>", base.name, rest.join(", ")),
        _ => format!("{}<{}>", base.name, shown.join(", ")),
    };
    let name: &'static str = Box::leak(name.into_boxed_str());
    let site = Callsite::new(name, base.phase, base.kind, base.module, base.file, base.line);
    // Named after its function as the base is, so that instantiations of two functions of one name stay apart.
    let site: &'static Callsite = Box::leak(Box::new(Callsite { own_name: base.own_name, ..site }));
    sites.insert(key, site);
    site
}

/// A type's name without module paths nor type arguments, as a method's span begins: `Scene` for
/// `apvd::scene::Scene<f64>`, `Scene` for `&mut Scene` (a trait implemented for a reference), `[u8]` and
/// `(u8, f64)` as they are written.
fn type_only(name: &str) -> String {
    let name = name.trim_start_matches(['&', '*']).trim_start_matches("mut ").trim_start_matches("const ");
    let name = name.trim_start_matches("dyn ");
    if name.starts_with(['[', '(']) {
        return short_type_name(name);
    }
    let path = name.split('<').next().unwrap_or(name);
    path.rsplit("::").next().unwrap_or(path).to_owned()
}

/// A type's name without module paths: `Vec<Dual>` for `alloc::vec::Vec<optimizer::Dual>`.
fn short_type_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut word = String::new();
    for character in name.chars() {
        if character.is_alphanumeric() || character == '_' {
            word.push(character);
        } else if character == ':' {
            word.clear();
        } else {
            out.push_str(&word);
            word.clear();
            out.push(character);
        }
    }
    out.push_str(&word);
    out
}

/// The last segments of module path `module` that no other of `modules` ends with: `component` of
/// `apvd_core::analysis::component` beside `apvd_core::shape`, `analysis::component` beside
/// `apvd_core::shape::component`. The whole path when it is a suffix of another.
fn shortest_unique<'a>(module: &'a str, modules: &[&str]) -> &'a str {
    // Where each suffix of whole segments begins, the last segment's first.
    let mut starts: Vec<usize> = module.match_indices("::").map(|(at, _)| at + 2).collect();
    starts.reverse();
    starts.push(0);
    for start in starts {
        let suffix = &module[start..];
        let shared = modules
            .iter()
            .filter(|other| **other != module)
            .any(|other| other.strip_suffix(suffix).is_some_and(|before| before.is_empty() || before.ends_with("::")));
        if !shared {
            return suffix;
        }
    }
    module
}

/// Each span's full path where its shown name is shorter, by span id (see `Names::full_paths`).
#[cfg_attr(not(feature = "timing"), allow(dead_code))]
pub(crate) fn full_paths() -> Vec<Option<String>> {
    NAMES.lock().as_ref().map_or_else(Vec::new, Names::full_paths)
}

/// The span name ids of the call sites that are steps.
#[cfg_attr(not(feature = "timing"), allow(dead_code))]
pub(crate) fn step_names() -> Vec<u32> {
    NAMES.lock().as_ref().map_or_else(Vec::new, |names| names.steps.clone())
}

/// The interned names as they are now: `(span names, phase names)` indexed by id.
#[cfg_attr(not(feature = "timing"), allow(dead_code))]
pub(crate) fn names() -> (Vec<&'static str>, Vec<&'static str>) {
    let names = NAMES.lock();
    names.as_ref().map_or_else(Default::default, |names| (names.spans.clone(), names.phases.clone()))
}

#[cfg(test)]
mod tests {
    use super::shortest_unique;

    #[test]
    fn a_module_path_is_cut_to_its_shortest_unique_end() {
        let modules = ["apvd_core::analysis::component", "apvd_core::shape::component", "apvd_core::scene"];
        assert_eq!(shortest_unique(modules[0], &modules), "analysis::component");
        assert_eq!(shortest_unique(modules[1], &modules), "shape::component");
        assert_eq!(shortest_unique(modules[2], &modules), "scene");
        // A path that another ends with is shown whole.
        let nested = ["model", "optimizer::model"];
        assert_eq!(shortest_unique(nested[0], &nested), "model");
        assert_eq!(shortest_unique(nested[1], &nested), "optimizer::model");
        // Segments are whole: `xmodel` does not end with `model`.
        let prefixed = ["a::model", "b::xmodel"];
        assert_eq!(shortest_unique(prefixed[0], &prefixed), "model");
    }
}
