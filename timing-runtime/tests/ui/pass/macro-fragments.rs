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

macro_rules! whole_signature {
    ($vis:vis fn $name:ident($arg:ident: $ty:ty) -> $ret:ty $body:block, $($args:tt)*) => {
        #[timed($($args)*)]
        $vis fn $name($arg: $ty) -> $ret $body
    };
}

timed_constant!(seven, "constants", { 7 });
whole_signature!(pub(crate) fn double(x: u32) -> u32 { x * 2 }, name = "double", phase = "arithmetic");
named!("two");

fn main() {
    assert_eq!(seven() + renamed() + double(1), 11);
}
