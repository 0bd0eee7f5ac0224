//! `systole plot` on real reports: a `run` report of the digits CNN gives
//! per-layer bars and a roofline, a `sweep` report the Pareto scatter; the
//! SVGs parse as XML and hold one mark per layer or point, placed in the
//! order of the figures they stand for. Bad reports exit 2 and write nothing.

mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;

const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");
const DIGITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_cnn_nm24.onnx");
const DIGITS_X: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_x.npy");

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// The `(tag, attributes)` of every element of an SVG file, which must parse.
fn elements(path: &Path) -> Vec<(String, Vec<(String, String)>)> {
    let text = fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.is_element())
        .map(|n| {
            let attrs = n.attributes().map(|a| (a.name().to_string(), a.value().to_string())).collect();
            (n.tag_name().name().to_string(), attrs)
        })
        .collect()
}

fn attr<'a>(e: &'a (String, Vec<(String, String)>), name: &str) -> &'a str {
    e.1.iter().find(|a| a.0 == name).map_or("", |a| a.1.as_str())
}

/// The elements with this tag and fill.
fn marks<'a>(
    all: &'a [(String, Vec<(String, String)>)],
    tag: &str,
    fill: impl Fn(&str) -> bool,
) -> Vec<&'a (String, Vec<(String, String)>)> {
    all.iter().filter(|e| e.0 == tag && fill(attr(e, "fill"))).collect()
}

/// The order of `v`'s elements from the smallest (indices).
fn ranks(v: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].partial_cmp(&v[b]).unwrap());
    idx
}

fn coords(marks: &[&(String, Vec<(String, String)>)], key: &str) -> Vec<f64> {
    marks.iter().map(|m| attr(m, key).parse::<f64>().unwrap()).collect()
}

#[test]
fn a_run_report_gives_one_bar_per_layer_and_places_each_layer_with_macs_on_the_roofline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_ok(&systole(d, &["compile", DIGITS, "--hw", DEFAULT, "-o", "m.sbin"]));
    assert_ok(&systole(d, &["run", "m.sbin", "--input", DIGITS_X, "--json", "r.json"]));
    fs::create_dir(d.join("plots")).unwrap();
    let o = systole(d, &["plot", "r.json", "-o", "plots"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("wrote plots/roofline.svg"), "{}", stdout(&o));
    let report = read_json(&d.join("r.json"));
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 5);

    let bars = elements(&d.join("plots/layers.svg"));
    assert_eq!(marks(&bars, "rect", |f| f == "#1F77B4").len(), layers.len(), "one cycles bar per layer");
    let energy = marks(&bars, "rect", |f| f == "#FF7F0E");
    assert_eq!(energy.len(), layers.len(), "one energy bar per layer");
    // Bar lengths follow the energies.
    let joules: Vec<f64> = layers.iter().map(|l| l["energy_pj"].as_f64().unwrap()).collect();
    let widths = coords(&energy, "width");
    assert_eq!(ranks(&widths).last(), ranks(&joules).last());
    let text = fs::read_to_string(d.join("plots/layers.svg")).unwrap();
    for l in layers {
        assert!(text.contains(l["name"].as_str().unwrap()), "{} not labelled", l["name"]);
    }

    // The roofline: a point per layer with MACs, at its intensity and MACs per cycle.
    let roof = elements(&d.join("plots/roofline.svg"));
    let points = marks(&roof, "circle", |f| f == "#1F77B4");
    let with_macs: Vec<&Value> = layers.iter().filter(|l| l["macs"].as_u64().unwrap() > 0).collect();
    assert_eq!(points.len(), with_macs.len());
    assert!(points.len() >= 3);
    let intensity: Vec<f64> =
        with_macs.iter().map(|l| l["macs"].as_f64().unwrap() / l["dram_data_bytes"].as_f64().unwrap()).collect();
    let per_cycle: Vec<f64> =
        with_macs.iter().map(|l| l["macs"].as_f64().unwrap() / l["cycles"].as_f64().unwrap()).collect();
    assert_eq!(ranks(&coords(&points, "cx")), ranks(&intensity));
    // SVG's y grows downwards.
    let up: Vec<f64> = coords(&points, "cy").iter().map(|y| -y).collect();
    assert_eq!(ranks(&up), ranks(&per_cycle));
    let text = fs::read_to_string(d.join("plots/roofline.svg")).unwrap();
    assert!(text.contains("peak 256 MAC/cycle") && text.contains("16 B/cycle"), "the roof's figures");
    assert!(text.contains("not placed (no MACs): /pool/MaxPool, /Flatten"), "the layers without MACs are named");
}

#[test]
fn a_sweep_report_gives_one_mark_per_point_that_ran_and_rings_the_pareto_front() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = systole(
        d,
        &[
            "sweep",
            DIGITS,
            "--hw",
            DEFAULT,
            "--input",
            DIGITS_X,
            "--set",
            "array=8,16",
            "--set",
            "dram.latency_cycles=50,200",
            "--set",
            "dram.bytes_per_cycle=8,16",
            "--json",
            "s.json",
        ],
    );
    assert_ok(&o);
    let o = systole(d, &["plot", "s.json"]);
    assert_ok(&o);
    let report = read_json(&d.join("s.json"));
    let ran: Vec<&Value> = report["points"].as_array().unwrap().iter().filter(|p| p["status"] == "ok").collect();
    // Some points do not run (their configuration is refused): they get no mark.
    assert_eq!(report["points"].as_array().unwrap().len(), 8);
    assert!(ran.len() >= 4 && ran.len() < 8, "{} points ran", ran.len());
    // The front, computed here by the definition.
    let obj =
        |p: &Value| [p["cycles"].as_f64().unwrap(), p["energy_uj"].as_f64().unwrap(), p["area_mm2"].as_f64().unwrap()];
    let front: Vec<bool> = ran
        .iter()
        .map(|p| {
            let a = obj(p);
            !ran.iter().any(|q| {
                let b = obj(q);
                (0..3).all(|k| b[k] <= a[k]) && (0..3).any(|k| b[k] < a[k])
            })
        })
        .collect();
    assert!(front.iter().any(|&f| f) && front.iter().any(|&f| !f), "{front:?}");

    let svg = elements(&d.join("pareto.svg"));
    let dots = marks(&svg, "circle", |f| f != "none");
    let rings = marks(&svg, "circle", |f| f == "none");
    assert_eq!(dots.len(), ran.len(), "one mark per point that ran");
    assert_eq!(rings.len(), front.iter().filter(|&&f| f).count(), "one ring per Pareto-optimal point");
    let cycles: Vec<f64> = ran.iter().map(|p| p["cycles"].as_f64().unwrap()).collect();
    assert_eq!(ranks(&coords(&dots, "cx")), ranks(&cycles));
    // The rings sit on the Pareto points.
    let ringed: Vec<(String, String)> = rings.iter().map(|r| (attr(r, "cx").into(), attr(r, "cy").into())).collect();
    for (dot, on) in dots.iter().zip(&front) {
        assert_eq!(ringed.contains(&(attr(dot, "cx").into(), attr(dot, "cy").into())), *on);
    }
    // Area as colour: the points do not all have one colour.
    let fills: std::collections::BTreeSet<&str> = dots.iter().map(|d| attr(d, "fill")).collect();
    assert!(fills.len() > 1, "{fills:?}");
}

#[test]
fn reports_that_cannot_be_plotted_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("bad.json"), "{\"command\": \"run\", \"layers\": [").unwrap();
    fs::write(d.join("other.json"), "{\"hello\": 1}").unwrap();
    fs::write(d.join("sim.json"), "{\"command\": \"sim\"}").unwrap();
    fs::write(d.join("nolayers.json"), "{\"command\": \"run\", \"layers\": [{\"name\": \"a\", \"cycles\": 3}]}")
        .unwrap();
    let none = ["layers.svg", "roofline.svg", "pareto.svg"];
    let cases: [(&[&str], &[&str]); 6] = [
        (&["plot", "bad.json"], &["bad.json", "not a JSON report"]),
        (&["plot", "other.json"], &["other.json", "`command` is missing"]),
        (&["plot", "sim.json"], &["sim.json", "`systole sim` report"]),
        (&["plot", "nolayers.json"], &["nolayers.json", "layers[0]", "energy_pj"]),
        (&["plot", "missing.json"], &["missing.json", "no such file"]),
        (&["plot", "sim.json", "-o", "nodir"], &["-o nodir", "not a directory"]),
    ];
    for (args, needles) in cases {
        assert_fails(&systole(d, args), 2, needles, d, &none);
    }
}
