//! Regression baselines: what a `run` or a `sweep` measured (per point:
//! cycles, energy, DRAM bus bytes and a hash of the output), recorded as a
//! JSON file (`docs/schema/baseline.schema.json`) and compared with a later
//! measurement of the same subject (model, input, configuration).
//!
//! A metric has regressed when it grew by more than the tolerance (a
//! fraction of the baseline's value), improved when it shrank by more; the
//! output hash regresses on any change (quantized results are exact). The
//! model is deterministic, so the default tolerance is 0: any growth is a
//! regression. A comparison is turned into text lines and a JUnit report
//! (one testcase per point and metric) for CI dashboards.

use super::{FlowError, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The version of the baseline file's layout.
pub const SCHEMA_VERSION: u32 = 1;

/// The `format` every baseline file carries, so another JSON file given
/// by mistake (a report) is named as such.
pub const FORMAT: &str = "systole-baseline";

/// `sha256:` and the hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The output hash: SHA-256 of the float32 outputs, little-endian, in order
/// (for a batch, every run's in turn) — the data `run --out` writes after
/// the `.npy` header, so `hashlib.sha256(np.load(f).astype('<f4').tobytes())`
/// gives the same.
pub fn output_hash(outputs: &[f32]) -> String {
    let bytes: Vec<u8> = outputs.iter().flat_map(|v| v.to_le_bytes()).collect();
    sha256(&bytes)
}

/// The command a baseline was recorded by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Run,
    Sweep,
}

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Sweep => "sweep",
        }
    }
}

/// What was measured; a baseline only compares with a measurement of the
/// same subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// The model: its name and its input and output tensors.
    pub model: String,
    /// The input as given (a file name, or how it was generated): shown,
    /// not compared (paths differ between checkouts).
    pub input: String,
    /// SHA-256 of the input array's data: compared.
    pub input_sha256: String,
    /// The hardware configuration (a sweep's base), every field.
    pub config: Value,
    /// A sweep's keys and values, in order (empty for `run`).
    pub swept: Vec<SweptKey>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweptKey {
    pub key: String,
    pub values: Vec<Value>,
}

/// What one point measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Total cycles (over every inference of the run).
    pub cycles: u64,
    pub energy_pj: f64,
    /// What the DRAM bus carried (whole beats, instruction fetch included).
    pub dram_bus_bytes: u64,
    /// A hash of the outputs, `ALGORITHM:HEX`: for `run` [`output_hash`]
    /// (`sha256:`), for a sweep point the hash the sweep compares its
    /// points' outputs with. Compared for equality only.
    pub output_hash: String,
}

/// One point: `run`'s one, or a sweep's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `run`, or `point N (key=value, ...)`.
    pub name: String,
    /// The swept keys' values at this point (empty for `run`).
    pub params: Map<String, Value>,
    /// `ok`, or why the point has no metrics (a sweep point that does not
    /// validate, compile or run).
    pub status: String,
    pub metrics: Option<Metrics>,
    pub error: Option<String>,
}

/// A baseline file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub format: String,
    pub schema_version: u32,
    pub command: Command,
    pub subject: Subject,
    pub entries: Vec<Entry>,
}

impl Baseline {
    pub fn new(command: Command, subject: Subject, entries: Vec<Entry>) -> Baseline {
        Baseline { format: FORMAT.to_string(), schema_version: SCHEMA_VERSION, command, subject, entries }
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses a baseline file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Baseline> {
        let bad = |why: String| FlowError::input(format!("{file}: not a usable systole baseline: {why}"));
        let v: Value = serde_json::from_str(text).map_err(|e| {
            let why = if e.is_eof() {
                format!("the JSON ends early (truncated?): {e}")
            } else {
                format!("invalid JSON: {e}")
            };
            bad(why)
        })?;
        // Say what the file is before what is wrong with its fields.
        match v.get("format").and_then(Value::as_str) {
            Some(FORMAT) => {}
            _ => {
                let what = match v.get("command").and_then(Value::as_str) {
                    Some(c) => format!("it looks like a `systole {c} --json` report"),
                    None => "it has no `\"format\": \"systole-baseline\"`".to_string(),
                };
                return Err(bad(format!("{what}; record a baseline with --write-baseline")));
            }
        }
        match v.get("schema_version").and_then(Value::as_u64) {
            Some(n) if n == u64::from(SCHEMA_VERSION) => {}
            other => {
                return Err(bad(format!(
                    "schema_version {}, this systole reads version {SCHEMA_VERSION}; record it again with \
                     --write-baseline",
                    other.map_or_else(|| "missing".to_string(), |n| n.to_string())
                )))
            }
        }
        serde_json::from_value(v).map_err(|e| bad(e.to_string()))
    }

    /// Checks that `self` (read from `file`) is a baseline of `command` on
    /// `subject`: the same model, input data, configuration and swept keys.
    pub fn check_subject(&self, command: Command, subject: &Subject, file: &str) -> Result<()> {
        let differs = |what: &str, base: &str, now: &str| {
            FlowError::input(format!(
                "{file}: the baseline is of a different {what} (baseline {base}, now {now}); compare like with like, \
                 or record a new baseline with --write-baseline"
            ))
        };
        if self.command != command {
            return Err(FlowError::input(format!(
                "{file}: a baseline of `systole {}`, not of `systole {}`",
                self.command.name(),
                command.name()
            )));
        }
        let (b, s) = (&self.subject, subject);
        if b.model != s.model {
            return Err(differs("model", &b.model, &s.model));
        }
        if b.input_sha256 != s.input_sha256 {
            return Err(differs(
                "input",
                &format!("{} {}", b.input, b.input_sha256),
                &format!("{} {}", s.input, s.input_sha256),
            ));
        }
        let mut diffs = Vec::new();
        value_diffs(&b.config, &s.config, "", &mut diffs);
        if !diffs.is_empty() {
            return Err(differs("hardware configuration", &diffs.join(", "), "as given"));
        }
        if b.swept != s.swept {
            let keys = |k: &[SweptKey]| {
                k.iter()
                    .map(|k| {
                        format!("{}={}", k.key, k.values.iter().map(Value::to_string).collect::<Vec<_>>().join(","))
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            return Err(differs("sweep", &keys(&b.swept), &keys(&s.swept)));
        }
        Ok(())
    }
}

/// The leaves of `a` that differ from `b`'s, as `key a where now b`. Keys
/// only one side has are skipped: a configuration key added to (or dropped
/// from) systole since the baseline was recorded does not void it.
fn value_diffs(a: &Value, b: &Value, prefix: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                if let Some(vb) = y.get(k) {
                    value_diffs(va, vb, &key, out);
                }
            }
        }
        _ if a != b => out.push(format!("`{prefix}` {a} where now {b}")),
        _ => {}
    }
}

/// What a baseline of a sweep of `graph` around `base` is of (`input` as
/// given, `input_sha256` of its data).
pub fn sweep_subject(
    graph: &compiler::ir::Graph,
    base: &isa::HwConfig,
    params: &[super::sweep::Param],
    input: &str,
    input_sha256: String,
) -> Subject {
    let values = |ids: &[compiler::ir::ValueId]| {
        ids.iter()
            .map(|&v| {
                let v = &graph.values[v];
                let shape: Vec<u64> = v.shape.iter().map(|&d| d as u64).collect();
                format!("`{}` {}", v.name, super::shape_text(&shape))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Subject {
        model: format!("{} (input {}, output {})", graph.name, values(&graph.inputs), values(&graph.outputs)),
        input: input.to_string(),
        input_sha256,
        config: serde_json::to_value(base).unwrap_or_default(),
        swept: params
            .iter()
            .map(|p| SweptKey { key: p.key.clone(), values: p.values.iter().map(|v| v.1.clone()).collect() })
            .collect(),
    }
}

/// One entry per point of a sweep: `point N (key=value, ...)`.
pub fn sweep_entries(s: &super::sweep::Sweep) -> Vec<Entry> {
    s.points
        .iter()
        .map(|p| {
            let i = p.index;
            let choice: Vec<(&super::sweep::Param, usize)> = s.params.iter().zip(p.choice.iter().copied()).collect();
            let named: Vec<String> = choice.iter().map(|(q, c)| format!("{}={}", q.key, q.values[*c].0)).collect();
            Entry {
                name: format!("point {i} ({})", named.join(", ")),
                params: choice.iter().map(|(q, c)| (q.key.clone(), q.values[*c].1.clone())).collect(),
                status: p.status.name().to_string(),
                metrics: p.status.metrics().map(|m| Metrics {
                    cycles: m.cycles,
                    energy_pj: m.energy_pj,
                    dram_bus_bytes: m.dram_bus_bytes,
                    output_hash: format!("fnv1a64:{:016x}", m.output_hash),
                }),
                error: p.status.error().map(str::to_string),
            }
        })
        .collect()
}

/// How much a metric may grow before it is a regression, as a fraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance(pub f64);

impl Tolerance {
    /// `1%`, `0.5%` or `1` (percent either way), from 0 to 1000 %.
    pub fn parse(text: &str) -> Result<Tolerance> {
        let t = text.trim();
        let number = t.strip_suffix('%').unwrap_or(t).trim();
        match number.parse::<f64>() {
            Ok(p) if (0.0..=1000.0).contains(&p) => Ok(Tolerance(p / 100.0)),
            _ => Err(FlowError::input(format!(
                "--tolerance {text}: expected a percentage from 0 to 1000, e.g. `1%` or `0.5%`"
            ))),
        }
    }
}

impl std::fmt::Display for Tolerance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.0 * 100.0)
    }
}

/// How a metric compares with its baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Same,
    /// Changed, but within the tolerance.
    Within,
    Improved,
    Regressed,
}

/// One metric of one point against the baseline.
#[derive(Clone, Debug)]
pub struct Finding {
    pub entry: String,
    /// `cycles`, `energy_pj`, `dram_bus_bytes`, `output_hash` or `status`.
    pub metric: &'static str,
    pub baseline: String,
    pub current: String,
    /// Relative change (`current / baseline - 1`) of a numeric metric.
    pub change: Option<f64>,
    pub verdict: Verdict,
}

impl Finding {
    /// `run: cycles 1,000 -> 1,100 (+10.00%)`.
    pub fn text(&self) -> String {
        let change = self.change.map_or_else(String::new, |c| {
            if c.is_finite() {
                format!(" ({:+.2}%)", 100.0 * c)
            } else {
                " (from 0)".to_string()
            }
        });
        format!("{}: {} {} -> {}{change}", self.entry, self.metric, self.baseline, self.current)
    }
}

fn numeric(entry: &str, metric: &'static str, base: f64, now: f64, tol: Tolerance, show: fn(f64) -> String) -> Finding {
    let change = if base != 0.0 {
        now / base - 1.0
    } else if now == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    let verdict = if now == base {
        Verdict::Same
    } else if now > base * (1.0 + tol.0) {
        Verdict::Regressed
    } else if now < base * (1.0 - tol.0) {
        Verdict::Improved
    } else {
        Verdict::Within
    };
    Finding {
        entry: entry.to_string(),
        metric,
        baseline: show(base),
        current: show(now),
        change: Some(change),
        verdict,
    }
}

fn count(v: f64) -> String {
    format!("{}", v as u64)
}

fn energy(v: f64) -> String {
    format!("{v:.1} pJ")
}

/// Every metric of every point of `current` against `baseline` (whose
/// subject has been checked). Points are matched by their parameters; a
/// point the baseline does not have (a baseline of another shard of the
/// sweep) is an error naming it (`file` names the baseline).
pub fn compare(baseline: &Baseline, current: &Baseline, tol: Tolerance, file: &str) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for now in &current.entries {
        let Some(base) = baseline.entries.iter().find(|b| b.params == now.params) else {
            return Err(FlowError::input(format!(
                "{file}: the baseline has no {} (a baseline of another shard of the sweep?); record one with \
                 --write-baseline",
                now.name
            )));
        };
        let name = now.name.as_str();
        match (&base.metrics, &now.metrics) {
            (Some(b), Some(n)) => {
                findings.push(numeric(name, "cycles", b.cycles as f64, n.cycles as f64, tol, count));
                findings.push(numeric(name, "energy_pj", b.energy_pj, n.energy_pj, tol, energy));
                findings.push(numeric(
                    name,
                    "dram_bus_bytes",
                    b.dram_bus_bytes as f64,
                    n.dram_bus_bytes as f64,
                    tol,
                    count,
                ));
                findings.push(Finding {
                    entry: name.to_string(),
                    metric: "output_hash",
                    baseline: b.output_hash.clone(),
                    current: n.output_hash.clone(),
                    change: None,
                    verdict: if b.output_hash == n.output_hash { Verdict::Same } else { Verdict::Regressed },
                });
            }
            (b, n) => {
                let status = |e: &Entry| match &e.error {
                    Some(err) => format!("{} ({err})", e.status),
                    None => e.status.clone(),
                };
                let verdict = match (b.is_some(), n.is_some()) {
                    (true, false) => Verdict::Regressed,
                    (false, true) => Verdict::Improved,
                    _ if base.status == now.status => Verdict::Same,
                    _ => Verdict::Within,
                };
                findings.push(Finding {
                    entry: name.to_string(),
                    metric: "status",
                    baseline: status(base),
                    current: status(now),
                    change: None,
                    verdict,
                });
            }
        }
    }
    Ok(findings)
}

/// `text` with the five XML special characters escaped, and characters
/// XML 1.0 cannot hold (most control characters) replaced by U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            '\t' | '\n' | '\r' => s.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => s.push('\u{FFFD}'),
            c => s.push(c),
        }
    }
    s
}

/// A JUnit XML report of `findings`: one testsuite named `suite`, one
/// testcase per point and metric (classname the point, name the metric), a
/// `<failure>` for each regression; an improvement is said in the
/// testcase's `<system-out>`.
pub fn junit(suite: &str, findings: &[Finding], tol: Tolerance) -> String {
    let failures = findings.iter().filter(|f| f.verdict == Verdict::Regressed).count();
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{0}\" tests=\"{1}\" failures=\"{failures}\" errors=\"0\">\n  <testsuite name=\"{0}\" \
         tests=\"{1}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">",
        xml_escape(suite),
        findings.len()
    );
    let _ = writeln!(
        x,
        "    <properties><property name=\"tolerance\" value=\"{}\"/></properties>",
        xml_escape(&tol.to_string())
    );
    for f in findings {
        let _ = write!(x, "    <testcase classname=\"{}\" name=\"{}\"", xml_escape(&f.entry), xml_escape(f.metric));
        let text = xml_escape(&f.text());
        match f.verdict {
            Verdict::Regressed => {
                let _ = writeln!(
                    x,
                    ">\n      <failure type=\"regression\" message=\"{text}\">{text} (tolerance {})</failure>\n    </testcase>",
                    xml_escape(&tol.to_string())
                );
            }
            Verdict::Improved => {
                let _ = writeln!(x, ">\n      <system-out>improved: {text}</system-out>\n    </testcase>");
            }
            Verdict::Same | Verdict::Within => x.push_str("/>\n"),
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cycles: u64, hash: &str) -> Entry {
        Entry {
            name: "run".into(),
            params: Map::new(),
            status: "ok".into(),
            metrics: Some(Metrics { cycles, energy_pj: 100.0, dram_bus_bytes: 64, output_hash: hash.into() }),
            error: None,
        }
    }

    fn baseline(e: Entry) -> Baseline {
        let subject = Subject {
            model: "m".into(),
            input: "x.npy".into(),
            input_sha256: sha256(b""),
            config: serde_json::json!({"array": {"rows": 4}}),
            swept: vec![],
        };
        Baseline::new(Command::Run, subject, vec![e])
    }

    #[test]
    fn growth_beyond_the_tolerance_regresses_and_shrinking_improves() {
        let base = baseline(entry(1000, "a"));
        let verdicts = |cycles, hash, tol| {
            compare(&base, &baseline(entry(cycles, hash)), Tolerance(tol), "b")
                .unwrap()
                .iter()
                .map(|f| f.verdict)
                .collect::<Vec<_>>()
        };
        use Verdict::*;
        assert_eq!(verdicts(1000, "a", 0.0), [Same, Same, Same, Same]);
        assert_eq!(verdicts(1001, "a", 0.0), [Regressed, Same, Same, Same]);
        assert_eq!(verdicts(1010, "a", 0.01), [Within, Same, Same, Same]);
        assert_eq!(verdicts(1011, "a", 0.01), [Regressed, Same, Same, Same]);
        assert_eq!(verdicts(989, "b", 0.01), [Improved, Same, Same, Regressed]);
    }

    #[test]
    fn tolerances_are_percentages() {
        assert_eq!(Tolerance::parse("1%").unwrap(), Tolerance(0.01));
        assert_eq!(Tolerance::parse(" 2.5 ").unwrap(), Tolerance(0.025));
        for bad in ["-1%", "x", "", "NaN%", "2000%"] {
            assert!(Tolerance::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_round_trips_and_bad_ones_say_what_they_are() {
        let mut b = baseline(entry(5, "h"));
        // Energies read back bit for bit (serde_json's float_roundtrip), or
        // a tolerance of 0 would see regressions of one ulp.
        for e in [0.1 + 0.2, 2821245.7235681713, 1.0 / 3.0, 7.0e-310] {
            b.entries[0].metrics.as_mut().unwrap().energy_pj = e;
            assert_eq!(Baseline::parse(&b.to_json(), "b.json").unwrap(), b);
        }
        let text = b.to_json();
        let err = |t: &str| Baseline::parse(t, "b.json").unwrap_err().to_string();
        assert!(err(&text[..text.len() / 2]).contains("truncated"), "{}", err(&text[..text.len() / 2]));
        assert!(err("{\"command\": \"run\", \"total_cycles\": 3}").contains("`systole run --json` report"));
        assert!(err(&text.replace("\"cycles\"", "\"cycle\"")).contains("cycle"));
        let mut other = b.subject.clone();
        other.config = serde_json::json!({"array": {"rows": 8}});
        let e = b.check_subject(Command::Run, &other, "b.json").unwrap_err().to_string();
        assert!(e.contains("`array.rows` 4 where now 8"), "{e}");
        assert!(b.check_subject(Command::Sweep, &b.subject, "b.json").is_err());
    }

    #[test]
    fn xml_special_characters_are_escaped() {
        assert_eq!(xml_escape("a<b & \"c\" 'd'>\u{1}"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{FFFD}");
    }
}
