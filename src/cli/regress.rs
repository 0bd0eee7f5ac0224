//! The regression options `run` and `sweep` share (`--baseline`,
//! `--tolerance`, `--write-baseline`, `--junit`): the baseline is read and
//! checked against the subject before the (long) measurement, and compared
//! after it; the files join the command's atomic outputs. The comparison
//! itself is `systole::flow::regression`.

use super::error::{CliError, Result};
use super::files::{read_input_text, InputKind, Outputs};
use clap::Args;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use systole::flow::regression::{self, Baseline, Command, Finding, Subject, Tolerance, Verdict};

#[derive(Args, Debug, Default)]
pub struct RegressArgs {
    /// Compare cycles, energy, DRAM bus bytes and the output hash (for
    /// `run` the SHA-256 of the float32 output bytes) with a baseline recorded by
    /// --write-baseline on the same model, input and configuration; any
    /// that grew beyond --tolerance fails the command (exit 1), naming
    /// each. Improvements beyond it are reported.
    #[arg(long, value_name = "B.json")]
    pub baseline: Option<PathBuf>,
    /// How much a metric may grow before it is a regression, in percent
    /// [default: 0%: the model is deterministic]. The output hash must not
    /// change at all.
    #[arg(long, value_name = "PERCENT", requires = "baseline")]
    pub tolerance: Option<String>,
    /// Record what this run measured as a baseline (written atomically).
    #[arg(long, value_name = "B.json")]
    pub write_baseline: Option<PathBuf>,
    /// Write the comparison as a JUnit XML report for CI dashboards: one
    /// testcase per point and metric, a failure for each regression.
    #[arg(long, value_name = "F.xml", requires = "baseline")]
    pub junit: Option<PathBuf>,
}

/// A baseline read and checked before the measurement.
pub struct Loaded {
    baseline: Baseline,
    tolerance: Tolerance,
    file: String,
}

impl RegressArgs {
    /// The output files, for the command's up-front destination check.
    pub fn destinations(&self) -> Vec<(&Path, &'static str)> {
        let mut d: Vec<(&Path, &'static str)> = Vec::new();
        if let Some(p) = &self.write_baseline {
            d.push((p, "--write-baseline"));
        }
        if let Some(p) = &self.junit {
            d.push((p, "--junit"));
        }
        d
    }

    /// Reads `--baseline` (if given) and checks it is of `command` on `subject`.
    pub fn load(&self, command: Command, subject: &Subject) -> Result<Option<Loaded>> {
        let Some(path) = &self.baseline else { return Ok(None) };
        let tolerance = match &self.tolerance {
            Some(t) => Tolerance::parse(t)?,
            None => Tolerance(0.0),
        };
        let file = path.display().to_string();
        let text = read_input_text(path, InputKind::Json)?;
        let baseline = Baseline::parse(&text, &file)?;
        baseline.check_subject(command, subject, &file)?;
        Ok(Some(Loaded { baseline, tolerance, file }))
    }

    /// Compares `current` with the loaded baseline, adds the JUnit report
    /// and the new baseline to `files`, appends the comparison to `text`,
    /// and returns the error to exit with when a metric regressed.
    pub fn finish(
        &self,
        loaded: Option<Loaded>,
        current: &Baseline,
        files: &mut Outputs,
        text: &mut String,
    ) -> Result<Option<CliError>> {
        let mut failure = None;
        if let Some(l) = loaded {
            let findings = regression::compare(&l.baseline, current, l.tolerance, &l.file)?;
            if let Some(path) = &self.junit {
                let suite = format!("systole {}", current.command.name());
                files.add(path, regression::junit(&suite, &findings, l.tolerance).into_bytes());
            }
            failure = summarize(&findings, &l, text);
        }
        if let Some(path) = &self.write_baseline {
            files.add(path, current.to_json().into_bytes());
        }
        Ok(failure)
    }
}

/// Writes the comparison's lines; returns the error naming every regression.
fn summarize(findings: &[Finding], l: &Loaded, text: &mut String) -> Option<CliError> {
    let of = |v: Verdict| findings.iter().filter(move |f| f.verdict == v);
    let (regressed, improved) = (of(Verdict::Regressed).count(), of(Verdict::Improved).count());
    let _ = writeln!(
        text,
        "\nbaseline      {} (tolerance {}): {} metric{} compared, {regressed} regressed, {improved} improved",
        l.file,
        l.tolerance,
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    for f in of(Verdict::Regressed) {
        let _ = writeln!(text, "  REGRESSED   {}", f.text());
    }
    for f in of(Verdict::Improved) {
        let _ = writeln!(text, "  improved    {}", f.text());
    }
    let within = of(Verdict::Within).count();
    if within > 0 {
        let _ = writeln!(text, "  {within} changed within the tolerance");
    }
    (regressed > 0).then(|| {
        let names: Vec<String> = of(Verdict::Regressed).map(Finding::text).collect();
        CliError::check(format!(
            "{regressed} metric{} regressed against baseline {} (tolerance {}): {}",
            if regressed == 1 { "" } else { "s" },
            l.file,
            l.tolerance,
            names.join("; ")
        ))
    })
}
