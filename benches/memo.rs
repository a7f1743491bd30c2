//! The real-shaped workload: steps shaped as those of a real area-proportional Venn diagram fitter with
//! forward-mode automatic differentiation, the code whose trial found the instrumentation's own share
//! understated. Most timed calls are a recursive, memoized computation (`area` of a region, by its key,
//! through the areas of the regions its key contains, each computed once a step and then read from the
//! memo); every operation on a dual number allocates its vector of derivatives. A step makes about 500
//! timed calls, over 400 of them recursive, and about 16,000 allocations, in about a millisecond.
//!
//! ```text
//! cargo run --release -p timing-benches --example memo -- [--steps N] [--json]
//! ```
//!
//! Built with the feature `timing` off it runs the same code uninstrumented; with `allocations`, the
//! runtime's counting allocator counts every allocation. The `example` bench measures it both ways.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;

use timing_runtime::timed;

#[cfg(feature = "allocations")]
#[global_allocator]
static ALLOCATOR: timing_runtime::alloc::Counting = timing_runtime::alloc::Counting::system();

/// Sets (circles) of the diagram: regions are the 2^SETS − 1 non-empty subsets.
const SETS: usize = 7;
/// Variables: each circle's x, y and radius.
const VARIABLES: usize = 3 * SETS;

/// A forward-mode dual number whose derivatives are a vector of their own, as autodiff code with a number
/// of variables known at run time keeps them: every operation allocates one.
#[derive(Clone, Debug)]
struct Dual {
    value: f64,
    derivatives: Vec<f64>,
}

impl Dual {
    fn variable(value: f64, index: usize) -> Dual {
        let mut derivatives = vec![0.0; VARIABLES];
        derivatives[index] = 1.0;
        Dual { value, derivatives }
    }

    fn add(&self, other: &Dual) -> Dual {
        let derivatives = self.derivatives.iter().zip(&other.derivatives).map(|(a, b)| a + b).collect();
        Dual { value: self.value + other.value, derivatives }
    }

    fn mul(&self, other: &Dual) -> Dual {
        let derivatives =
            self.derivatives.iter().zip(&other.derivatives).map(|(a, b)| a * other.value + self.value * b).collect();
        Dual { value: self.value * other.value, derivatives }
    }

    fn scale(&self, factor: f64) -> Dual {
        Dual { value: self.value * factor, derivatives: self.derivatives.iter().map(|d| d * factor).collect() }
    }

    /// A smooth "overlap" of two quantities: a · b / (a + b), as an intersection shrinks with either.
    fn overlap(&self, other: &Dual) -> Dual {
        let sum = self.add(other);
        let product = self.mul(other);
        let inverse = 1.0 / sum.value.max(1e-12);
        // d(p / s) = dp / s − p ds / s²
        let derivatives = product
            .derivatives
            .iter()
            .zip(&sum.derivatives)
            .map(|(dp, ds)| dp * inverse - product.value * ds * inverse * inverse)
            .collect();
        Dual { value: product.value * inverse, derivatives }
    }
}

/// The diagram: circles and the memo of region areas of the current step.
struct Scene {
    circles: Vec<[Dual; 3]>,
    memo: RefCell<HashMap<String, Dual>>,
}

impl Scene {
    #[timed(phase = "regions")]
    fn new(params: &[f64]) -> Scene {
        let circles = (0..SETS)
            .map(|set| {
                std::array::from_fn(|coordinate| Dual::variable(params[3 * set + coordinate], 3 * set + coordinate))
            })
            .collect();
        Scene { circles, memo: RefCell::new(HashMap::new()) }
    }

    /// The area of one circle.
    #[timed(phase = "regions")]
    fn disk(&self, set: usize) -> Dual {
        let radius = &self.circles[set][2];
        radius.mul(radius).scale(std::f64::consts::PI)
    }

    /// How close two circles' centres are, as a factor of their overlap.
    #[timed(phase = "regions")]
    fn closeness(&self, a: usize, b: usize) -> Dual {
        let (ca, cb) = (&self.circles[a], &self.circles[b]);
        let dx = ca[0].add(&cb[0].scale(-1.0));
        let dy = ca[1].add(&cb[1].scale(-1.0));
        let distance = dx.mul(&dx).add(&dy.mul(&dy));
        let reach = ca[2].add(&cb[2]);
        reach.mul(&reach).overlap(&distance)
    }

    /// The area of the region whose sets are the characters of `key` ("036": sets 0, 3 and 6), memoized:
    /// from the areas of the regions it lies in (its key less one set, each), as the recursion of the real
    /// code computes one region from those that contain it.
    #[timed(phase = "error")]
    fn area(&self, key: &String) -> Option<Dual> {
        if let Some(known) = self.memo.borrow().get(key) {
            return Some(known.clone());
        }
        let sets: Vec<usize> = key.bytes().map(|byte| usize::from(byte - b'0')).collect();
        let area = match sets[..] {
            [] => return None,
            [set] => self.disk(set),
            [first, .., last] => {
                let mut area = self.closeness(first, last);
                for skipped in 0..key.len() {
                    let within = format!("{}{}", &key[..skipped], &key[skipped + 1..]);
                    area = area.overlap(&self.area(&within)?);
                }
                // The real code's region areas take a few dozen dual operations each.
                for _ in 0..ROUNDS {
                    area = area.add(&area.scale(1e-3)).mul(&area.scale(0.5));
                }
                area
            }
        };
        self.memo.borrow_mut().insert(key.clone(), area.clone());
        Some(area)
    }
}

/// Dual operations a region's area takes beyond its recursion, in pairs.
const ROUNDS: usize = 22;

/// The squared error of every region's area against its target, and its derivatives: the whole diagram's
/// area, which computes every region's on the way, then each region's from the memo.
#[timed(phase = "error")]
fn error(scene: &Scene, targets: &[(String, f64)]) -> Option<Dual> {
    let whole: String = (0..SETS).map(|set| char::from(b'0' + set as u8)).collect();
    scene.area(&whole)?;
    let memo = scene.memo.borrow();
    let mut total: Option<Dual> = None;
    for (key, target) in targets {
        let mut difference = memo.get(key)?.clone();
        difference.value -= target;
        let squared = difference.mul(&difference);
        total = Some(match total {
            Some(total) => total.add(&squared),
            None => squared,
        });
    }
    total
}

#[timed(phase = "update")]
fn update(params: &mut [f64], error: &Dual, rate: f64) {
    for (param, derivative) in params.iter_mut().zip(&error.derivatives) {
        *param -= rate * derivative.clamp(-1.0, 1.0);
    }
}

#[timed(step)]
fn step(params: &mut [f64], targets: &[(String, f64)]) -> f64 {
    let scene = Scene::new(params);
    let error = error(&scene, targets);
    match error {
        Some(error) => {
            update(params, &error, 1e-4);
            error.value
        }
        None => f64::NAN,
    }
}

#[timed(batch)]
fn train(params: &mut [f64], targets: &[(String, f64)], steps: u64) -> f64 {
    (0..steps).fold(0.0, |_, _| step(params, targets))
}

/// Every region's key (its sets in increasing order), with a target area.
fn targets() -> Vec<(String, f64)> {
    (1u32..1 << SETS)
        .map(|mask| {
            let key: String =
                (0..SETS).filter(|set| mask & (1 << set) != 0).map(|set| char::from(b'0' + set as u8)).collect();
            let target = 1.0 / f64::from(mask.count_ones());
            (key, target)
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut steps = 1_000u64;
    let mut json = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--steps" => match args.next().and_then(|value| value.parse().ok()) {
                Some(value) => steps = value,
                None => fail("--steps takes a number"),
            },
            "--json" => json = true,
            other => fail(&format!("unknown argument `{other}`")),
        }
    }
    let targets = targets();
    let mut params: Vec<f64> =
        (0..VARIABLES).map(|index| 1.0 + (index % 3) as f64 * 0.5 + index as f64 * 0.01).collect();
    let mut error = 0.0;
    let mut left = steps;
    while left > 0 {
        error = train(&mut params, &targets, left.min(100));
        left -= left.min(100);
    }
    black_box(error);
    let summary = timing_runtime::summary();
    if json {
        match serde_json::to_string(&summary) {
            Ok(json) => println!("{json}"),
            Err(problem) => fail(&format!("cannot write the summary: {problem}")),
        }
    } else {
        println!("{steps} steps, error {error:.4e}\n\n{summary}");
    }
}

fn fail(message: &str) -> ! {
    eprintln!("memo: {message}");
    std::process::exit(2);
}
