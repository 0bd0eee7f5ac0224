//! Progress on stderr for every command that can take more than a second
//! (`run` over a batch, `sim`, `area`, verilating a configuration; `sweep`).
//!
//! On a terminal it is an indicatif bar or spinner, cleared when done. When
//! stderr is not a terminal (CI logs, pipes) it is plain lines: nothing for
//! the first second, then a line whenever another 10 % is done or 5 s have
//! passed, whichever comes first, and a last `done` line — never a line per
//! step. `--quiet` (any command) turns all of it off ([`set_quiet`]).
//! `SYSTOLE_PROGRESS_DELAY_MS` changes the first second (tests set 0).

use super::table::group;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Line mode: at most one line per this much time, unless another tenth is done.
const LINE_INTERVAL: Duration = Duration::from_secs(5);
/// How often a spinner redraws (terminal) or looks at the clock (lines).
const TICK: Duration = Duration::from_millis(200);

/// `--quiet`: no progress from here on.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Nothing is shown before this much time has passed: fast commands stay silent.
fn delay() -> Duration {
    let ms = std::env::var("SYSTOLE_PROGRESS_DELAY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    Duration::from_millis(ms)
}

struct LineState {
    /// A line has been printed (so `done` gets one too).
    shown: bool,
    last_line: Instant,
    /// The last tenth a line was printed for.
    last_tenth: u64,
}

enum Mode {
    Off,
    /// Created on the first update after the delay.
    Terminal(Option<ProgressBar>),
    Lines(LineState),
}

struct Inner {
    /// `systole sim`, `systole area`: the start of every line.
    prefix: String,
    /// Steps in all (a bar), or None (a count or a spinner).
    total: Option<u64>,
    /// What is counted: `cycles`, `inferences`, `points`; "" for a spinner.
    unit: &'static str,
    pos: u64,
    /// What is being done now (a spinner's step).
    message: String,
    start: Instant,
    delay: Duration,
    mode: Mode,
}

impl Inner {
    fn status(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64();
        let message = if self.message.is_empty() { String::new() } else { format!("{}, ", self.message) };
        match (self.total, self.unit) {
            (Some(total), unit) => {
                let pct = (self.pos * 100).checked_div(total).unwrap_or(100);
                format!("{}: {message}{}/{} {unit} ({pct} %), {secs:.1} s", self.prefix, self.pos, total)
            }
            (None, "") => format!("{}: {message}{secs:.0} s", self.prefix),
            (None, unit) => format!("{}: {message}{} {unit}, {secs:.1} s", self.prefix, group(self.pos)),
        }
    }

    fn terminal_bar(&self) -> ProgressBar {
        let target = ProgressDrawTarget::stderr();
        let (pb, template) = match self.total {
            Some(n) => (
                ProgressBar::with_draw_target(Some(n), target),
                format!("{{prefix}} [{{bar:32}}] {{pos}}/{{len}} {}, {{elapsed}} (eta {{eta}}) {{msg}}", self.unit),
            ),
            None if self.unit.is_empty() => {
                (ProgressBar::with_draw_target(None, target), "{spinner} {prefix}: {msg} ({elapsed})".to_string())
            }
            None => (
                ProgressBar::with_draw_target(None, target),
                format!("{{spinner}} {{prefix}}: {{human_pos}} {}, {{elapsed}} {{msg}}", self.unit),
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_prefix(self.prefix.clone());
        pb.set_position(self.pos);
        pb.set_message(self.message.clone());
        if self.total.is_none() {
            pb.enable_steady_tick(TICK);
        }
        pb
    }

    /// Shows the state if it is due.
    fn update(&mut self) {
        let elapsed = self.start.elapsed();
        if elapsed < self.delay {
            return;
        }
        match &mut self.mode {
            Mode::Off => {}
            Mode::Terminal(Some(pb)) => pb.set_position(self.pos),
            Mode::Terminal(None) => {
                let pb = self.terminal_bar();
                self.mode = Mode::Terminal(Some(pb));
            }
            Mode::Lines(l) => {
                let tenth = match self.total {
                    Some(total) if total > 0 => self.pos * 10 / total,
                    _ => 0,
                };
                let due = !l.shown || tenth > l.last_tenth || l.last_line.elapsed() >= LINE_INTERVAL;
                if due {
                    l.shown = true;
                    l.last_line = Instant::now();
                    l.last_tenth = tenth;
                    let line = self.status();
                    eprintln!("{line}");
                }
            }
        }
    }

    fn set_message(&mut self, message: &str) {
        if self.message == message {
            return;
        }
        self.message = message.to_string();
        if let Mode::Terminal(Some(pb)) = &self.mode {
            pb.set_message(self.message.clone());
        }
        self.update();
    }

    fn finish(&mut self, summary: &str) {
        match std::mem::replace(&mut self.mode, Mode::Off) {
            Mode::Off => {}
            Mode::Terminal(pb) => {
                if let Some(pb) = pb {
                    pb.finish_and_clear();
                }
            }
            Mode::Lines(l) => {
                // A command that had nothing to do (no step) stays silent.
                if l.shown || (self.start.elapsed() >= self.delay && (self.pos > 0 || self.total.is_none())) {
                    let secs = self.start.elapsed().as_secs_f64();
                    eprintln!("{}: done, {summary} in {secs:.1} s", self.prefix);
                }
            }
        }
    }
}

/// A progress display: a bar over a known number of steps, a running count
/// (cycles of a run whose length is unknown) or a spinner (one long step).
/// Cheap to update; finish it with [`Progress::finish`] (dropping it
/// finishes it without a summary).
pub struct Progress {
    inner: Arc<Mutex<Inner>>,
    ticker: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Progress {
    fn new(prefix: &str, total: Option<u64>, unit: &'static str) -> Progress {
        let mode = if quiet() {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal(None)
        } else {
            Mode::Lines(LineState { shown: false, last_line: Instant::now(), last_tenth: 0 })
        };
        let inner = Inner {
            prefix: prefix.to_string(),
            total,
            unit,
            pos: 0,
            message: String::new(),
            start: Instant::now(),
            delay: delay(),
            mode,
        };
        Progress { inner: Arc::new(Mutex::new(inner)), ticker: None }
    }

    /// A bar over `total` steps of `unit` (`inferences`, `points`).
    pub fn bar(prefix: &str, total: u64, unit: &'static str) -> Progress {
        Progress::new(prefix, Some(total), unit)
    }

    /// A running count of `unit` (`cycles`) with no known end.
    pub fn count(prefix: &str, unit: &'static str) -> Progress {
        Progress::new(prefix, None, unit)
    }

    /// One long step (a yosys pass, a Verilator build) that reports
    /// nothing itself: shown as it goes by a background tick, with the
    /// current `message`.
    pub fn spinner(prefix: &str, message: &str) -> Progress {
        let mut p = Progress::new(prefix, None, "");
        p.set_message(message);
        let inner = Arc::clone(&p.inner);
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::spawn(move || loop {
            match stopped.recv_timeout(TICK) {
                Err(RecvTimeoutError::Timeout) => {
                    if let Ok(mut i) = inner.lock() {
                        i.update();
                    }
                }
                _ => return,
            }
        });
        p.ticker = Some((stop, handle));
        p
    }

    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut i) = self.inner.lock() {
            f(&mut i);
        }
    }

    pub fn set_position(&self, pos: u64) {
        self.with(|i| {
            i.pos = pos;
            i.update();
        });
    }

    pub fn inc(&self, n: u64) {
        self.with(|i| {
            i.pos += n;
            i.update();
        });
    }

    /// What is being done now (a spinner's step), shown with the next line.
    pub fn set_message(&mut self, message: &str) {
        self.with(|i| i.set_message(message));
    }

    /// Ends the display; in line mode, a last line `done, SUMMARY in T s`
    /// when any line was shown or the delay has passed.
    pub fn finish(mut self, summary: &str) {
        self.stop_ticker();
        self.with(|i| i.finish(summary));
    }

    fn stop_ticker(&mut self) {
        if let Some((stop, handle)) = self.ticker.take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_ticker();
        self.with(|i| {
            if let Mode::Terminal(Some(pb)) = &i.mode {
                pb.finish_and_clear();
            }
            i.mode = Mode::Off;
        });
    }
}

/// Shows every Verilator build of a configuration (minutes for a large
/// array) as a spinner with its current step.
#[cfg(feature = "rtl")]
pub fn observe_rtl_builds() {
    use rtl::verilate::BuildEvent;
    let mut current: Option<Progress> = None;
    rtl::verilate::set_build_observer(move |event| match event {
        BuildEvent::Start { config, rows, cols, .. } => {
            let prefix = format!("systole: verilating `{config}` ({rows}x{cols} array, first use; cached after)");
            current = Some(Progress::spinner(&prefix, "starting"));
        }
        BuildEvent::Step(step) => {
            if let Some(p) = &mut current {
                p.set_message(step);
            }
        }
        BuildEvent::Done { .. } => {
            if let Some(p) = current.take() {
                p.finish("built");
            }
        }
    });
}
