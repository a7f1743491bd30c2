use timing_runtime::timed;

struct Plain(f64);

#[timed(per_type)]
impl Plain {
    fn get(&self) -> f64 {
        self.0
    }
}

fn main() {
    Plain(1.0).get();
}
