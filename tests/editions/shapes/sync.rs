// Timed functions whose meaning depends on the edition: when temporaries drop against locals, in tails,
// `match` and `if let` scrutinees, while unwinding. Each logs what it does; `run_sync` calls them all.

struct Noisy(&'static str);

impl Noisy {
    fn value(&self) -> usize {
        log(&format!("use {}", self.0));
        self.0.len()
    }
}

impl Drop for Noisy {
    fn drop(&mut self) {
        log(&format!("drop {}", self.0));
    }
}

#[timed]
fn tail_temporary() -> usize {
    let _local = Noisy("local");
    Noisy("temporary").value()
}

#[timed]
fn nested_tail() -> usize {
    let outer = Noisy("outer");
    let inner = {
        let _inner = Noisy("inner");
        Noisy("inner temporary").value()
    };
    inner + outer.value()
}

#[timed]
fn match_scrutinee() -> usize {
    let _local = Noisy("match local");
    match Noisy("scrutinee").value() {
        0 => 0,
        n => {
            log("arm");
            n
        }
    }
}

#[timed]
fn if_let_scrutinee(flag: bool) -> usize {
    let _local = Noisy("if-let local");
    if let Some(n) = Some(Noisy("if-let temporary").value()).filter(|_| flag) {
        n
    } else {
        log("else");
        0
    }
}

#[timed]
fn early_return(fail: bool) -> Result<usize, String> {
    let _guard = Noisy("early");
    if fail {
        return Err(String::from("failed"));
    }
    let parsed: usize = "7".parse().map_err(|_| String::from("parse"))?;
    Ok(parsed)
}

#[timed]
fn unwinds() -> usize {
    let _local = Noisy("unwinding local");
    if Noisy("before panic").value() > 0 {
        panic!("on purpose");
    }
    0
}

#[timed]
fn recursive(depth: u32) -> u32 {
    if depth == 0 { 0 } else { recursive(depth - 1) + 1 }
}

fn run_sync() {
    log(&format!("tail_temporary = {}", tail_temporary()));
    log(&format!("nested_tail = {}", nested_tail()));
    log(&format!("match_scrutinee = {}", match_scrutinee()));
    log(&format!("if_let_scrutinee = {}", if_let_scrutinee(true)));
    log(&format!("if_let_scrutinee = {}", if_let_scrutinee(false)));
    log(&format!("early_return = {:?}", early_return(true)));
    log(&format!("early_return = {:?}", early_return(false)));
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    log(&format!("unwinds = {:?}", std::panic::catch_unwind(unwinds).is_err()));
    std::panic::set_hook(hook);
    log(&format!("recursive = {}", recursive(20)));
}
