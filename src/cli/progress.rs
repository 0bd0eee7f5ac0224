//! Progress of a command's steps on stderr: an indicatif bar on a
//! terminal; elsewhere (CI logs, a job's output file) a line now and then,
//! so that a long command is not silent there. `--quiet` (or a single
//! step) shows nothing.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Without a terminal, at most one line per this interval (and the last).
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Counts `total` steps of a command (e.g. `systole sweep`, 16 `points`).
pub struct Progress {
    show: Show,
    done: u64,
    total: u64,
}

enum Show {
    Nothing,
    Bar(ProgressBar),
    Lines { prefix: String, unit: String, start: Instant, last: Option<Instant> },
}

impl Progress {
    /// `prefix` starts each line (`systole sweep`); `unit` names the steps.
    pub fn new(prefix: &str, unit: &str, total: u64, quiet: bool) -> Progress {
        let show = if quiet || total == 0 {
            Show::Nothing
        } else if std::io::stderr().is_terminal() {
            let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = format!("{{prefix}} [{{bar:32}}] {{pos}}/{{len}} {unit}, {{elapsed}} (eta {{eta}})");
            if let Ok(style) = ProgressStyle::with_template(&template) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb.set_prefix(prefix.to_string());
            Show::Bar(pb)
        } else {
            Show::Lines { prefix: prefix.into(), unit: unit.into(), start: Instant::now(), last: None }
        };
        Progress { show, done: 0, total }
    }

    /// One more step done.
    pub fn inc(&mut self) {
        self.done += 1;
        match &mut self.show {
            Show::Nothing => {}
            Show::Bar(pb) => pb.inc(1),
            Show::Lines { prefix, unit, start, last } => {
                let now = Instant::now();
                if self.done == self.total || last.is_none_or(|t| now - t >= LINE_EVERY) {
                    *last = Some(now);
                    eprintln!("{prefix}: {}/{} {unit} ({:.1} s)", self.done, self.total, (now - *start).as_secs_f64());
                }
            }
        }
    }

    /// Clears the bar (lines stay).
    pub fn finish(self) {
        if let Show::Bar(pb) = self.show {
            pb.finish_and_clear();
        }
    }
}
