// `#[timed]` inside `macro_rules!`: a body passed as `$body:block` and values as `$value:literal` or
// `$value:expr` arrive in invisible groups.
use timing_runtime::timed;

macro_rules! timed_constant {
    ($name:ident, $phase:literal, $body:block) => {
        #[timed(phase = $phase)]
        fn $name() -> u32 $body
    };
}

macro_rules! named {
    ($name:expr) => {
        #[timed(name = $name)]
        fn renamed() -> u32 {
            2
        }
    };
}

timed_constant!(seven, "constants", { 7 });
named!("two");

fn main() {
    assert_eq!(seven() + renamed(), 9);
}
