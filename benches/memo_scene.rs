//! The real-shaped workload's code, shared by the `memo` example and the table's `memo` row: a step of a
//! real area-proportional Venn diagram fitter with forward-mode automatic differentiation (see
//! `memo.rs`). `memo_scene!` writes it into a module with the attributes given for each kind of function,
//! so that the instrumented and the bare versions are the same code.

#![allow(dead_code)]

/// Sets (circles) of the diagram: regions are the 2^SETS − 1 non-empty subsets.
pub const SETS: usize = 7;
/// Variables: each circle's x, y and radius.
pub const VARIABLES: usize = 3 * SETS;

/// A forward-mode dual number whose derivatives are a vector of their own, as autodiff code with a number
/// of variables known at run time keeps them: every operation allocates one.
#[derive(Clone, Debug)]
pub struct Dual {
    pub value: f64,
    pub derivatives: Vec<f64>,
}

impl Dual {
    pub fn variable(value: f64, index: usize) -> Dual {
        let mut derivatives = vec![0.0; VARIABLES];
        derivatives[index] = 1.0;
        Dual { value, derivatives }
    }

    pub fn add(&self, other: &Dual) -> Dual {
        let derivatives = self.derivatives.iter().zip(&other.derivatives).map(|(a, b)| a + b).collect();
        Dual { value: self.value + other.value, derivatives }
    }

    pub fn mul(&self, other: &Dual) -> Dual {
        let derivatives =
            self.derivatives.iter().zip(&other.derivatives).map(|(a, b)| a * other.value + self.value * b).collect();
        Dual { value: self.value * other.value, derivatives }
    }

    pub fn scale(&self, factor: f64) -> Dual {
        Dual { value: self.value * factor, derivatives: self.derivatives.iter().map(|d| d * factor).collect() }
    }

    /// A smooth "overlap" of two quantities: a · b / (a + b), as an intersection shrinks with either.
    pub fn overlap(&self, other: &Dual) -> Dual {
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

/// Dual operations a region's area takes beyond its recursion, in pairs.
pub const ROUNDS: usize = 22;

/// Every region's key (its sets in increasing order), with a target area.
pub fn targets() -> Vec<(String, f64)> {
    (1u32..1 << SETS)
        .map(|mask| {
            let key: String =
                (0..SETS).filter(|set| mask & (1 << set) != 0).map(|set| char::from(b'0' + set as u8)).collect();
            let target = 1.0 / f64::from(mask.count_ones());
            (key, target)
        })
        .collect()
}

/// Writes the workload into module `$module`, each kind of function carrying the attributes given for it.
macro_rules! memo_scene {
    ($module:ident, regions: [$(#[$regions:meta])*], error: [$(#[$error:meta])*], update: [$(#[$update:meta])*],
     step: [$(#[$step:meta])*], batch: [$(#[$batch:meta])*]) => {
        pub mod $module {
            use std::cell::RefCell;
            use std::collections::HashMap;
            use std::collections::hash_map::DefaultHasher;
            use std::hash::BuildHasherDefault;

            /// The memo's hasher: std's SipHash, as the real code's `HashMap` uses, with fixed keys rather than
            /// random ones per process, so that callgrind counts the same instructions in every run.
            type Memo = HashMap<String, Dual, BuildHasherDefault<DefaultHasher>>;

            use super::Dual;



            /// The diagram: circles and the memo of region areas of the current step.
            pub struct Scene {
                circles: Vec<[Dual; 3]>,
                memo: RefCell<Memo>,
            }

            impl Scene {
                $(#[$regions])*
                pub fn new(params: &[f64]) -> Scene {
                    let circles = (0..super::SETS)
                        .map(|set| {
                            std::array::from_fn(|coordinate| {
                            Dual::variable(params[3 * set + coordinate], 3 * set + coordinate)
                        })
                        })
                        .collect();
                    Scene { circles, memo: RefCell::new(Memo::default()) }
                }

                /// The area of one circle.
                $(#[$regions])*
                pub fn disk(&self, set: usize) -> Dual {
                    let radius = &self.circles[set][2];
                    radius.mul(radius).scale(std::f64::consts::PI)
                }

                /// How close two circles' centres are, as a factor of their overlap.
                $(#[$regions])*
                pub fn closeness(&self, a: usize, b: usize) -> Dual {
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
                $(#[$error])*
                pub fn area(&self, key: &String) -> Option<Dual> {
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
                            for _ in 0..super::ROUNDS {
                                area = area.add(&area.scale(1e-3)).mul(&area.scale(0.5));
                            }
                            area
                        }
                    };
                    self.memo.borrow_mut().insert(key.clone(), area.clone());
                    Some(area)
                }
            }

            /// The squared error of every region's area against its target, and its derivatives: the whole diagram's
            /// area, which computes every region's on the way, then each region's from the memo.
            $(#[$error])*
            pub fn error(scene: &Scene, targets: &[(String, f64)]) -> Option<Dual> {
                let whole: String = (0..super::SETS).map(|set| char::from(b'0' + set as u8)).collect();
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

            $(#[$update])*
            pub fn update(params: &mut [f64], error: &Dual, rate: f64) {
                for (param, derivative) in params.iter_mut().zip(&error.derivatives) {
                    *param -= rate * derivative.clamp(-1.0, 1.0);
                }
            }

            $(#[$step])*
            pub fn step(params: &mut [f64], targets: &[(String, f64)]) -> f64 {
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

            $(#[$batch])*
            pub fn train(params: &mut [f64], targets: &[(String, f64)], steps: u64) -> f64 {
                (0..steps).fold(0.0, |_, _| step(params, targets))
            }


            /// One step of fixed parameters from `seed`: what the table times, a call at a time.
            pub fn one_step(seed: u64) -> u64 {
                let targets = super::targets();
                let mut params: Vec<f64> = (0..super::VARIABLES)
                    .map(|index| 1.0 + (index % 3) as f64 * 0.5 + (index as u64 ^ (seed & 7)) as f64 * 0.01)
                    .collect();
                step(&mut params, &targets).to_bits()
            }
        }
    };
}

memo_scene!(bare, regions: [], error: [], update: [], step: [], batch: []);
memo_scene!(
    timed,
    regions: [#[timing_runtime::timed(phase = "regions")]],
    error: [#[timing_runtime::timed(phase = "error")]],
    update: [#[timing_runtime::timed(phase = "update")]],
    step: [#[timing_runtime::timed(step)]],
    batch: [#[timing_runtime::timed(batch)]]
);
