//! `timing top` as a person sees it (issue 29), in a real terminal: tmux (Debian's `tmux`, which
//! `.ci/run` installs) runs it against a run served live by this test process, and its screen, read with
//! `capture-pane`, shows the phase names and a step count that grows; it survives a resize and the program
//! stopping (and says so), and `q` ends it with exit status 0. A saved run is shown the same way.
//!
//! tmux runs on a socket of its own (`-L`), killed with its sessions however the test ends.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use timing_runtime::timed;

fn work(units: u64) -> u64 {
    (0..units).fold(units, |x, _| std::hint::black_box(x).wrapping_mul(31).wrapping_add(7))
}

#[timed(phase = "assemble")]
fn assemble(units: u64) -> u64 {
    work(units)
}

#[timed(phase = "solve")]
fn solve(units: u64) -> u64 {
    work(units * 2)
}

#[timed(step)]
fn step(units: u64) -> u64 {
    assemble(units) ^ solve(units)
}

#[timed(batch)]
fn batch() -> u64 {
    (0..50).fold(0, |sum, _| sum ^ step(2_000))
}

/// A tmux server of the test's own, killed (with its sessions) when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        Tmux { socket: format!("timing-top-{name}-{}", std::process::id()) }
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run tmux (Debian's package `tmux`): {error}"));
        assert!(output.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts `timing top ARGS` in a session of 110 × 36 cells; its exit status goes to `status`.
    fn start(&self, args: &str, status: &Path) {
        let _ = std::fs::remove_file(status);
        let command = format!("{} top {args}; echo $? > {}", env!("CARGO_BIN_EXE_timing"), status.display());
        self.run(&["new-session", "-d", "-s", "top", "-x", "110", "-y", "36", &command]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }

    /// The screen once it shows all of `texts`, within 20 s.
    fn wait_for(&self, texts: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if texts.iter().all(|text| screen.contains(text)) {
                return screen;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no {texts:?} on the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Presses `q` and returns the exit status `timing top` wrote, within 10 s.
    fn quit(&self, status: &Path) -> String {
        self.run(&["send-keys", "-t", "top", "q"]);
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(status) {
                if text.ends_with('\n') {
                    return text.trim().to_owned();
                }
            }
            assert!(started.elapsed() < Duration::from_secs(10), "`q` did not end it:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

fn dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("top");
    std::fs::create_dir_all(&dir).expect("a directory");
    dir
}

/// `Steps N` on the screen.
fn steps(screen: &str) -> u64 {
    let after = screen.split("Steps ").nth(1).expect("a step count on the screen");
    after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a number")
}

#[test]
fn top_follows_a_live_run_survives_a_resize_and_its_stop_and_quits_on_q() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let server = timing_runtime::serve(":0").expect("a loopback port");
    let trainer = std::thread::spawn(|| {
        while !STOP.load(Ordering::Relaxed) {
            std::hint::black_box(batch());
        }
    });
    let tmux = Tmux::new("live");
    let status = dir().join("live.status");
    tmux.start(&format!("{} --interval 0.3", server.url()), &status);
    let first = tmux.wait_for(&["assemble", "solve", "Steps ", "live, updated"]);
    let before = steps(&first);
    std::thread::sleep(Duration::from_millis(1_500));
    let later = tmux.wait_for(&["assemble", "Steps "]);
    assert!(steps(&later) > before, "the step count did not grow:\n{first}\n{later}");
    assert!(later.contains("Spans by self time") && later.contains("steps/s, last minute"), "{later}");

    // Smaller and back: it draws again at the new size.
    tmux.run(&["resize-window", "-t", "top", "-x", "80", "-y", "30"]);
    let small = tmux.wait_for(&["assemble", "Phases"]);
    assert!(small.lines().all(|line| line.chars().count() <= 80), "drawn beyond 80 columns:\n{small}");
    tmux.run(&["resize-window", "-t", "top", "-x", "110", "-y", "36"]);

    // The program stops: the view says so and keeps the numbers.
    STOP.store(true, Ordering::Relaxed);
    trainer.join().expect("the trainer ends");
    drop(server);
    let stopped = tmux.wait_for(&["the program has stopped", "assemble", "Steps "]);
    assert!(steps(&stopped) >= steps(&later), "{stopped}");
    assert_eq!(tmux.quit(&status), "0", "exit status");
}

#[test]
fn top_shows_a_saved_run_the_same_way() {
    let saved = dir().join("saved.json");
    for _ in 0..5 {
        batch();
    }
    let run = timing_runtime::summary();
    std::fs::write(&saved, serde_json::to_string(&run).expect("JSON")).expect("saved");
    let tmux = Tmux::new("saved");
    let status = dir().join("saved.status");
    tmux.start(saved.to_str().expect("a path"), &status);
    let screen = tmux.wait_for(&["a saved run", "assemble", "solve", "Steps "]);
    assert!(steps(&screen) >= 250, "{screen}");
    assert_eq!(tmux.quit(&status), "0");
    // A file that is not a summary is refused before the terminal is touched.
    let output = Command::new(env!("CARGO_BIN_EXE_timing")).args(["top", "missing.json"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read missing.json"));
}
