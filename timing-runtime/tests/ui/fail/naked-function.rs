use timing_runtime::timed;

#[timed]
#[unsafe(naked)]
extern "C" fn trampoline() {
    core::arch::naked_asm!("ret")
}

fn main() {}
