// One error, at the returned value, with the conversion the plain `async fn` is offered.
use timing_runtime::timed;

#[timed]
async fn greeting(formal: bool) -> String {
    if formal {
        return "Good day";
    }
    std::future::ready(String::from("hi")).await
}

fn main() {
    drop(greeting(true));
}
