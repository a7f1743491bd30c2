//! Every kind of function a Rust user writes compiles under `#[timed]` and behaves as it does without it
//! (issue 3). Each test calls the timed function and checks its result, and that the call was recorded.

#![cfg(feature = "timing")]
// The functions here are odd on purpose (each is a shape of signature to accept), and clippy says so.
#![allow(dead_code, clippy::unnecessary_wraps, clippy::needless_pass_by_value, clippy::non_minimal_cfg)]
#![allow(clippy::multiple_bound_locations, clippy::boxed_local, clippy::manual_inspect)]

mod common;

use std::fmt::{Debug, Display};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use common::exclusive;
use timing_runtime::{summary, timed};

fn count(name: &str) -> u64 {
    summary().span(name).map_or(0, |stats| stats.count)
}

#[timed]
pub(crate) fn generic<T: Clone + Debug, const N: usize>(items: [T; N]) -> Vec<T>
where
    T: PartialEq,
{
    items.to_vec()
}

#[timed]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() { a } else { b }
}

#[timed]
fn first_word(text: &str) -> &str {
    text.split(' ').next().unwrap_or_default()
}

#[timed]
fn patterns(mut acc: u32, (a, b): (u32, u32), Point { x, .. }: Point, _: u8) -> u32 {
    acc += a + b + x;
    acc
}

struct Point {
    x: u32,
    y: u32,
}

#[timed]
fn impl_arg(value: impl Display) -> impl Display {
    format!("<{value}>")
}

#[timed]
fn result_impl(ok: bool) -> Result<impl Display, String> {
    if ok { Ok(7) } else { Err("no".to_owned()) }
}

#[timed]
fn coerced() -> Result<Box<dyn Display>, String> {
    Ok(Box::new(1))
}

#[timed]
fn parse_sum(text: &str) -> Result<i32, std::num::ParseIntError> {
    let mut sum = 0;
    for part in text.split(',') {
        if part == "stop" {
            return Ok(sum);
        }
        sum += part.parse::<i32>()?;
    }
    Ok(sum)
}

#[timed]
fn diverges() -> ! {
    panic!("diverged")
}

#[timed]
#[track_caller]
fn caller_line() -> u32 {
    std::panic::Location::caller().line()
}

#[track_caller]
#[timed]
fn caller_line_attribute_first() -> u32 {
    std::panic::Location::caller().line()
}

/// Documented, `#[must_use]`, `#[inline]`, `#[cold]` and deprecated all at once.
#[timed]
#[must_use]
#[inline]
#[cold]
#[deprecated = "only for the test"]
fn decorated() -> u8 {
    3
}

#[timed]
fn inner_attributes() -> u8 {
    #![allow(unused_variables)]
    let unused = 1;
    4
}

#[timed]
fn shadowing() -> u8 {
    // Names the expansion might use, shadowed by the body's own items.
    use std as core;
    struct Callsite;
    mod timing_runtime {}
    let _ = Callsite;
    let _: Option<u8> = core::option::Option::None;
    5
}

#[timed]
unsafe fn raw_read(pointer: *const u8) -> u8 {
    unsafe { *pointer }
}

#[timed]
extern "C" fn c_abi(x: i32) -> i32 {
    x * 2
}

#[timed]
#[unsafe(no_mangle)]
pub extern "C" fn timing_suite_exported(x: i32) -> i32 {
    x + 1
}

#[timed]
fn r#type(r#in: u8) -> u8 {
    r#in
}

#[timed]
fn factorial(n: u64) -> u64 {
    if n <= 1 { 1 } else { n * factorial(n - 1) }
}

#[timed]
fn cfg_param(#[cfg(all())] kept: u8, #[cfg(any())] removed: u8) -> u8 {
    kept
}

macro_rules! make_timed {
    ($name:ident, $value:expr) => {
        #[timed]
        fn $name() -> u8 {
            $value
        }
    };
}
make_timed!(from_macro, 9);

#[derive(Clone, Debug, Default, PartialEq)]
struct Counter {
    n: u32,
}

impl Counter {
    #[timed]
    fn new() -> Self {
        Counter { n: 0 }
    }

    #[timed]
    fn get(&self) -> u32 {
        self.n
    }

    #[timed]
    fn bump(&mut self) -> &mut Self {
        self.n += 1;
        self
    }

    #[timed]
    fn into_n(self) -> u32 {
        self.n
    }

    #[timed]
    fn boxed(self: Box<Self>) -> u32 {
        self.n
    }

    #[timed]
    fn pinned(self: Pin<&mut Self>) -> u32 {
        self.n
    }

    #[timed]
    fn map<F: Fn(u32) -> u32>(&self, f: F) -> u32 {
        f(self.n)
    }
}

trait Shape {
    #[timed]
    fn area(&self) -> f64 {
        1.0
    }

    fn perimeter(&self) -> f64;
}

struct Square(f64);

impl Shape for Square {
    #[timed]
    fn perimeter(&self) -> f64 {
        4.0 * self.0
    }
}

#[test]
fn signatures_of_every_kind_behave_as_written() {
    let _exclusive = exclusive();
    assert_eq!(generic([1, 2, 3]), vec![1, 2, 3]);
    assert_eq!(longest("ab", "abc"), "abc");
    assert_eq!(first_word("hello world"), "hello");
    assert_eq!(patterns(1, (2, 3), Point { x: 4, y: 0 }, 0), 10);
    assert_eq!(impl_arg(5).to_string(), "<5>");
    assert_eq!(result_impl(true).map(|value| value.to_string()), Ok("7".to_owned()));
    assert!(result_impl(false).is_err());
    assert_eq!(coerced().unwrap().to_string(), "1");
    assert_eq!(parse_sum("1,2,3"), Ok(6));
    assert_eq!(parse_sum("1,stop,x"), Ok(1));
    assert!(parse_sum("1,x").is_err());
    #[allow(deprecated)]
    let decorated_value = decorated();
    assert_eq!(decorated_value, 3);
    assert_eq!(inner_attributes(), 4);
    assert_eq!(shadowing(), 5);
    assert_eq!(unsafe { raw_read(&6) }, 6);
    assert_eq!(c_abi(4), 8);
    assert_eq!(timing_suite_exported(1), 2);
    assert_eq!(r#type(7), 7);
    assert_eq!(factorial(10), 3_628_800);
    assert_eq!(cfg_param(8), 8);
    assert_eq!(from_macro(), 9);
    for (name, calls) in [
        ("generic", 1),
        ("longest", 1),
        ("patterns", 1),
        ("result_impl", 2),
        ("parse_sum", 3),
        ("decorated", 1),
        ("raw_read", 1),
        ("timing_suite_exported", 1),
        ("type", 1),
        ("factorial", 10),
        ("from_macro", 1),
    ] {
        assert_eq!(count(name), calls, "{name}");
    }
}

#[test]
fn early_returns_and_question_marks_are_still_recorded() {
    let _exclusive = exclusive();
    assert_eq!(parse_sum("1,stop"), Ok(1));
    assert!(parse_sum("x").is_err());
    assert_eq!(count("parse_sum"), 2);
}

#[test]
fn track_caller_still_reports_the_callers_line() {
    let _exclusive = exclusive();
    let line = line!();
    assert_eq!(caller_line(), line + 1);
    assert_eq!(caller_line_attribute_first(), line + 2);
}

#[test]
fn a_diverging_function_unwinds_through_its_guard() {
    let _exclusive = exclusive();
    let result = std::panic::catch_unwind(|| diverges());
    assert!(result.is_err());
    assert_eq!(count("diverges"), 1);
    // The stack is back where it was: a step after the panic is attributed normally.
    assert_eq!(factorial(3), 6);
    assert_eq!(count("factorial"), 3);
}

#[test]
fn methods_of_every_receiver_behave_as_written() {
    let _exclusive = exclusive();
    let mut counter = Counter::new();
    counter.bump().bump();
    assert_eq!(counter.get(), 2);
    assert_eq!(counter.map(|n| n * 10), 20);
    assert_eq!(Box::new(counter.clone()).boxed(), 2);
    assert_eq!(Pin::new(&mut counter).pinned(), 2);
    assert_eq!(counter.into_n(), 2);
    assert_eq!(Square(2.0).perimeter(), 8.0);
    assert_eq!(Square(2.0).area(), 1.0);
    // Named after their type, which `self` or `Self` in the signature says they have (a trait's default
    // method, after the type it runs for).
    for name in ["new", "bump", "get", "map", "boxed", "pinned", "into_n"] {
        assert!(count(&format!("Counter::{name}")) >= 1, "{name}");
    }
    for name in ["Square::perimeter", "Square::area"] {
        assert!(count(name) >= 1, "{name}");
    }
    assert_eq!(count("Counter::bump"), 2);
}

#[timed]
#[test]
fn a_test_function_can_be_timed() {
    assert_eq!(factorial(3), 6);
}

#[test]
#[timed(name = "timed_test_second")]
fn a_test_function_can_be_timed_with_the_attribute_second() {
    assert_eq!(factorial(4), 24);
}

#[test]
fn generic_instantiations_share_one_call_site() {
    let _exclusive = exclusive();
    generic([1u8]);
    generic(["a"; 2]);
    assert_eq!(count("generic"), 2);
}

// ---- async ----

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// Pending once, then ready: a future that really suspends.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[timed(phase = "io")]
async fn fetch(n: u32) -> u32 {
    YieldOnce(false).await;
    common::spin(200);
    n + 1
}

#[timed]
async fn fetch_boxed(n: u32) -> Result<Box<dyn Display + Send>, String> {
    let value = fetch(n).await;
    if value == 0 {
        return Err("zero".to_owned());
    }
    Ok(Box::new(value))
}

#[timed]
async fn fetch_question(text: &str) -> Result<u32, std::num::ParseIntError> {
    let value: u32 = text.parse()?;
    Ok(fetch(value).await)
}

#[timed]
async fn fetch_impl(n: u32) -> impl Display {
    n
}

#[timed]
async unsafe fn fetch_unsafe(pointer: *const u32) -> u32 {
    unsafe { *pointer }
}

struct Service(u32);

impl Service {
    #[timed]
    async fn call(&self, extra: u32) -> u32 {
        YieldOnce(false).await;
        self.0 + extra
    }
}

trait AsyncSource {
    async fn read(&self) -> u32;
}

impl AsyncSource for Service {
    #[timed]
    async fn read(&self) -> u32 {
        self.0
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[test]
fn async_fns_behave_as_written_and_stay_send() {
    let _exclusive = exclusive();
    assert_eq!(block_on(assert_send(fetch(1))), 2);
    assert_eq!(block_on(assert_send(fetch_boxed(1))).unwrap().to_string(), "2");
    assert_eq!(block_on(fetch_question("4")), Ok(5));
    assert!(block_on(fetch_question("x")).is_err());
    assert_eq!(block_on(fetch_impl(6)).to_string(), "6");
    assert_eq!(block_on(unsafe { fetch_unsafe(&7) }), 7);
    let service = Service(8);
    assert_eq!(block_on(assert_send(service.call(1))), 9);
    assert_eq!(block_on(service.read()), 8);
    let run = summary();
    let fetch_stats = run.span("fetch").expect("recorded");
    assert_eq!(fetch_stats.count, 3);
    assert!(fetch_stats.total_ns >= 3 * 200_000, "busy time covers the work: {fetch_stats:?}");
    assert!(fetch_stats.wall_ns >= fetch_stats.total_ns, "{fetch_stats:?}");
    for name in ["fetch_boxed", "fetch_question", "fetch_impl", "fetch_unsafe", "Service::call", "Service::read"] {
        assert!(run.span(name).is_some_and(|stats| stats.count >= 1), "{name}");
    }
}

#[test]
fn a_future_that_is_not_send_stays_not_send_and_still_works() {
    let _exclusive = exclusive();
    #[timed]
    async fn holds_rc() -> usize {
        let shared = std::rc::Rc::new(5);
        YieldOnce(false).await;
        *shared
    }
    assert_eq!(block_on(holds_rc()), 5);
}

#[test]
fn interleaved_futures_never_count_a_nanosecond_twice() {
    let _exclusive = exclusive();
    #[timed(step)]
    fn step_with_two_futures() {
        let mut first = std::pin::pin!(fetch(1));
        let mut second = std::pin::pin!(fetch(2));
        let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut context = Context::from_waker(&waker);
        let (mut first_done, mut second_done) = (false, false);
        while !(first_done && second_done) {
            first_done = first_done || first.as_mut().poll(&mut context).is_ready();
            second_done = second_done || second.as_mut().poll(&mut context).is_ready();
        }
    }
    step_with_two_futures();
    let run = summary();
    let io = run.phase_breakdown.ns("io");
    assert!(io <= run.total_ns, "{run:#?}");
    assert!(io >= 2 * 200_000, "{run:#?}");
    assert_eq!(run.span("fetch").map(|stats| stats.count), Some(2));
}

#[test]
fn a_future_dropped_before_completion_is_counted_as_cancelled() {
    let _exclusive = exclusive();
    let mut future = Box::pin(fetch(1));
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    assert!(future.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    drop(future);
    drop(fetch(2));
    let stats = summary().span("fetch").cloned().expect("recorded");
    assert_eq!((stats.count, stats.cancelled), (0, 1));
}

#[test]
fn a_block_is_timed_with_scope() {
    let _exclusive = exclusive();
    #[timed(step)]
    fn step_with_closures() -> u64 {
        (0..4u64)
            .map(|i| {
                let _scope = timing_runtime::scope!("closure_body", phase = "regions");
                common::spin(50);
                i
            })
            .sum()
    }
    assert_eq!(step_with_closures(), 6);
    let run = summary();
    assert_eq!(run.span("closure_body").map(|stats| stats.count), Some(4));
    assert!(run.phase_breakdown.ns("regions") >= 200_000, "{run:#?}");
}

macro_rules! timed_in_a_macro {
    ($name:ident, $phase:literal, $span:expr, $body:block) => {
        #[timed(name = $span, phase = $phase)]
        fn $name() -> u32 $body
    };
}

timed_in_a_macro!(from_fragments, "fragments", "from_fragments_span", { 7 });

#[test]
fn a_function_written_by_a_macro_from_fragments_is_timed() {
    let _exclusive = exclusive();
    assert_eq!(from_fragments(), 7);
    let run = summary();
    assert_eq!(run.span("from_fragments_span").map(|stats| stats.count), Some(1));
}

mod reexport {
    pub use timing_runtime::*;
}

#[timed(crate = reexport)]
fn through_a_re_export() -> u8 {
    3
}

#[test]
fn crate_names_a_re_export_of_the_runtime() {
    let _exclusive = exclusive();
    assert_eq!(through_a_re_export(), 3);
    assert_eq!(count("through_a_re_export"), 1);
}

#[timed]
async fn early_return_coerced(fail: bool) -> Result<u8, Box<dyn std::error::Error>> {
    if fail {
        return Err(Box::new(std::fmt::Error));
    }
    std::future::ready(Ok(4)).await
}

#[test]
fn an_early_return_in_an_async_fn_coerces_and_is_timed() {
    let _exclusive = exclusive();
    let waker = std::task::Waker::noop();
    let mut context = Context::from_waker(waker);
    for fail in [true, false] {
        let mut future = std::pin::pin!(early_return_coerced(fail));
        assert!(matches!(future.as_mut().poll(&mut context), Poll::Ready(result) if result.is_err() == fail));
    }
    assert_eq!(count("early_return_coerced"), 2);
}

#[async_trait::async_trait]
trait Fetch {
    async fn fetch_remote(&self, n: u64) -> u64;
}

struct Remote;

#[async_trait::async_trait]
impl Fetch for Remote {
    #[timed]
    async fn fetch_remote(&self, n: u64) -> u64 {
        common::spin(300);
        YieldOnce(false).await;
        n + 1
    }
}

#[test]
fn an_async_trait_method_is_timed_for_its_polls_not_for_boxing_its_future() {
    let _exclusive = exclusive();
    let mut context = Context::from_waker(Waker::noop());
    let mut future = Remote.fetch_remote(1);
    let mut polls = 0;
    let output = loop {
        polls += 1;
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            break output;
        }
    };
    assert_eq!((output, polls), (2, 2));
    let stats = summary().span("Remote::fetch_remote").cloned().expect("timed");
    assert_eq!(stats.count, 1);
    // The 300 µs of work are inside the future; boxing it takes about a microsecond.
    assert!(stats.total_ns >= 300_000, "{stats:#?}");
}

#[timed]
async fn early_return_with_impl(fail: bool) -> Result<impl Display, Box<dyn std::error::Error>> {
    if fail {
        return Err(Box::new(std::fmt::Error));
    }
    Ok(std::future::ready(5).await)
}

#[test]
fn an_early_return_coerces_where_the_output_type_has_an_impl_trait() {
    let _exclusive = exclusive();
    let mut context = Context::from_waker(Waker::noop());
    let mut future = std::pin::pin!(early_return_with_impl(false));
    assert!(matches!(future.as_mut().poll(&mut context), Poll::Ready(Ok(value)) if value.to_string() == "5"));
    assert_eq!(count("early_return_with_impl"), 1);
}

mod shapes {
    use timing_runtime::timed;

    pub struct Shape;

    impl Shape {
        #[timed(phase = "update")]
        pub fn step(&self) -> u32 {
            Shape::scale(1)
        }

        /// Neither `self` nor `Self`: nothing tells the macro that this is a method.
        #[timed]
        pub fn scale(x: u32) -> u32 {
            x
        }
    }

    pub struct Model;

    impl Model {
        #[timed]
        pub fn step(&self, shape: &Shape) -> u32 {
            shape.step() + Model::scale(1)
        }

        #[timed]
        pub fn scale(x: u32) -> u32 {
            x
        }
    }
}

mod annotated {
    use timing_runtime::timed;

    pub struct Scene;
    pub struct Region;

    #[timed]
    impl Scene {
        pub fn new() -> Self {
            Scene
        }
    }

    #[timed(phase = "regions")]
    impl Region {
        pub fn new() -> Self {
            Region
        }

        pub fn area(&self) -> f64 {
            2.0
        }
    }
}

#[test]
fn functions_of_the_same_name_are_different_spans_told_apart() {
    let _exclusive = exclusive();
    let shape = shapes::Shape;
    let model = shapes::Model;
    for _ in 0..3 {
        assert_eq!(model.step(&shape), 2);
    }
    let run = summary();
    // Methods that take `self` are named after their types.
    for name in ["Shape::step", "Model::step"] {
        assert_eq!(run.span(name).map(|stats| stats.count), Some(3), "{name}: {:#?}", run.spans);
    }
    // Both `scale` functions live in one module and nothing says whose they are: each is told apart by its
    // place in the file.
    let scales: Vec<_> = run.spans.iter().filter(|stats| stats.name.starts_with("scale (")).collect();
    assert_eq!(scales.len(), 2, "{:?}", run.spans.iter().map(|stats| &stats.name).collect::<Vec<_>>());
    assert!(scales.iter().all(|stats| stats.count == 3));
    // The call tree keeps the outer `step` calling the inner one.
    let tree = &run.call_tree;
    let inner = tree.nodes.iter().position(|node| node.depth == 1 && node.name == "Shape::step").expect("nested");
    assert_eq!(tree.path(inner), "Model::step;Shape::step", "{tree}");
}

#[test]
fn an_impl_block_times_each_method_as_type_and_method() {
    let _exclusive = exclusive();
    let _ = annotated::Scene::new();
    let region = annotated::Region::new();
    assert!((region.area() - 2.0).abs() < f64::EPSILON);
    let run = summary();
    for name in ["Scene::new", "Region::new", "Region::area"] {
        assert_eq!(run.span(name).map(|stats| stats.count), Some(1), "{name}: {:#?}", run.spans);
    }
}

mod numbers {
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub struct Dual(pub f64, pub f64);

    impl std::ops::Mul for Dual {
        type Output = Dual;
        fn mul(self, other: Dual) -> Dual {
            Dual(self.0 * other.0, self.0 * other.1 + self.1 * other.0)
        }
    }
}

#[timed(per_type)]
fn square<T: std::ops::Mul<Output = T> + Copy>(x: T) -> T {
    x * x
}

#[test]
fn per_type_gives_each_instantiation_a_span_named_with_its_types() {
    let _exclusive = exclusive();
    assert!((square(3.0_f64) - 9.0).abs() < f64::EPSILON);
    assert_eq!(square(numbers::Dual(3.0, 1.0)), numbers::Dual(9.0, 6.0));
    assert_eq!(square(numbers::Dual(1.0, 0.0)), numbers::Dual(1.0, 0.0));
    let run = summary();
    assert_eq!(run.span("square<f64>").map(|stats| stats.count), Some(1), "{:#?}", run.spans);
    assert_eq!(run.span("square<Dual>").map(|stats| stats.count), Some(2), "{:#?}", run.spans);
    assert!(run.span("square").is_none());
}

mod two_impls {
    use std::fmt;

    use timing_runtime::timed;

    pub struct Id(pub u32);

    #[timed]
    impl fmt::Display for Id {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}", self.0)
        }
    }

    #[timed]
    impl fmt::Debug for Id {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Id({})", self.0)
        }
    }
}

#[test]
fn two_impls_of_one_method_name_on_one_type_are_two_spans() {
    let _exclusive = exclusive();
    let id = two_impls::Id(4);
    assert_eq!(format!("{id} {id:?} {id:?}"), "4 Id(4) Id(4)");
    let run = summary();
    let mut counts: Vec<u64> =
        run.spans.iter().filter(|stats| stats.name.starts_with("Id::fmt")).map(|stats| stats.count).collect();
    counts.sort_unstable();
    assert_eq!(counts, [1, 2], "{:#?}", run.spans);
}

mod typed {
    use timing_runtime::timed;

    pub struct S;

    #[timed]
    impl S {
        /// Its own attribute, inside a timed `impl`: named as its neighbours are.
        #[timed(phase = "x")]
        pub fn m(&self) -> u8 {
            1
        }

        pub fn n(&self) -> u8 {
            2
        }
    }

    pub struct G<T>(pub T);

    #[timed(per_type)]
    impl<T: Copy> G<T> {
        pub fn get(&self) -> T {
            self.0
        }
    }

    pub struct Scene<D>(pub D);

    impl<D: Copy> Scene<D> {
        /// `Self` in the signature: a method of a generic type, split by `D`.
        #[timed(per_type)]
        pub fn new(d: D) -> Self {
            Scene(d)
        }
    }
}

#[test]
fn methods_are_named_after_their_type_and_per_type_splits_by_the_impls_parameters() {
    let _exclusive = exclusive();
    assert_eq!(typed::S.m() + typed::S.n(), 3);
    assert_eq!((typed::G(1.5_f64).get(), typed::G(3_u8).get(), typed::G(4_u8).get()), (1.5, 3, 4));
    let _scenes = (typed::Scene::new(1.0_f64), typed::Scene::new(2_u8), typed::Scene::new(3_u8));
    let run = summary();
    let names: Vec<&str> = run.spans.iter().map(|stats| stats.name.as_str()).collect();
    for (name, count) in
        [("S::m", 1), ("S::n", 1), ("G<f64>::get", 1), ("G<u8>::get", 2), ("Scene<f64>::new", 1), ("Scene<u8>::new", 2)]
    {
        assert_eq!(run.span(name).map(|stats| stats.count), Some(count), "{name}: {names:?}");
    }
    assert!(run.span("m").is_none() && run.span("G::get").is_none(), "{names:?}");
}
