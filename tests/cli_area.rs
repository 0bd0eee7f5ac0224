//! `systole area`: bad input and a missing yosys exit 2 and write nothing
//! (no yosys needed); with `--features rtl` (the RTL tier, `scripts/test.sh`,
//! which installs yosys) the 4x4 configuration end to end, text and JSON,
//! and `systole sweep --area rtl`. Those two read the synthesis `rtl`'s
//! area test (`rtl/tests/area.rs`) stored: the RTL tier runs that test
//! before this file, in the same lane.

mod common;
use common::*;

const TINY: &str = "examples/hw/tiny.toml";

#[test]
fn a_missing_yosys_is_bad_input_and_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hw = root().join(TINY);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_systole"))
        .current_dir(d)
        .env("SYSTOLE_YOSYS", d.join("no-such-yosys"))
        .args(["area", "--hw", hw.to_str().unwrap(), "--json", "area.json"])
        .output()
        .unwrap();
    assert_fails(&o, 2, &["needs yosys", "install it with `apt-get install -y yosys`", "tiny-4x4"], d, &["area.json"]);
}

#[test]
fn bad_arguments_exit_2_before_any_synthesis() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hw = root().join(TINY);
    let hw = hw.to_str().unwrap();
    let o = systole(d, &["area", "--hw", "missing.toml"]);
    assert_fails(&o, 2, &["missing.toml", "no such file"], d, &[]);
    let o = systole(d, &["area", "--hw", hw, "--json", "no/such/dir/a.json"]);
    assert_fails(&o, 2, &["--json", "does not exist"], d, &[]);
    let o = systole(d, &["area", "--hw", hw, "--fpga", "altera"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("xilinx"), "{}", stderr(&o));
}

/// The 4x4 configuration with yosys, without the FPGA synthesis (half the
/// time). It shares `rtl`'s test cache (`target/tmp/systole-area-cache`), so
/// after `cargo test -p rtl --test area` this is quick.
#[cfg(feature = "rtl")]
#[test]
fn tiny_config_area_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hw = root().join(TINY);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_systole"))
        .current_dir(d)
        .env("SYSTOLE_RTL_CACHE", concat!(env!("CARGO_TARGET_TMPDIR"), "/systole-area-cache"))
        .args(["area", "--hw", hw.to_str().unwrap(), "--fpga", "none", "--json", "area.json"])
        .output()
        .unwrap();
    assert_ok(&o);
    let text = stdout(&o);
    println!("{text}");
    for needle in ["configuration `tiny-4x4`", "array", "requant", "dma_load", "accel (top)", "spad", "from the RTL"] {
        assert!(text.contains(needle), "`{needle}` missing:\n{text}");
    }
    assert!(!text.contains("LUT"), "--fpga none reports no FPGA resources:\n{text}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("area.json")).unwrap()).unwrap();
    let area = v["area_mm2"].as_f64().unwrap();
    assert_eq!(v["area_source"], "rtl");
    assert_eq!(area, v["synthesized"]["total"].as_f64().unwrap());
    let analytical = v["analytical"]["total"].as_f64().unwrap();
    assert!((v["ratio"].as_f64().unwrap() - area / analytical).abs() < 1e-9);
    assert!(v["generic"]["cells"].as_u64().unwrap() > 10_000);
    assert!(v["fpga"].is_null());
    // accel, array, check, compute, dma_load, dma_store, requant, qadd,
    // qadd_fma, and the vector unit: vec_unit, vec_lane and its seven
    // binary32 units.
    assert_eq!(v["generic"]["modules"].as_array().unwrap().len(), 18);
    assert_no_temp_files(d);
}

/// `systole sweep --area rtl`: each point's area from yosys. The two DRAM
/// latencies of the 4x4 are the same hardware (the latency is no RTL
/// parameter), so one synthesis serves both points: the generic one `rtl`'s
/// area test stored in the shared test cache (the RTL tier runs that test
/// first, scripts/test.sh), so this takes seconds there.
#[cfg(feature = "rtl")]
#[test]
fn sweep_area_from_rtl_synthesis() {
    use serde_json::Value;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = root().join("examples/models/tiny_mlp.stm");
    let hw = root().join(TINY);
    // An input of `examples/models/tiny_mlp.stm`.
    let bytes: Vec<u8> = std::iter::repeat_n(0.5f32.to_le_bytes(), 16).flatten().collect();
    let npy = compiler::npy::encode(compiler::npy::Elem::F32, &[1, 16], &bytes).unwrap();
    std::fs::write(d.join("x.npy"), npy).unwrap();
    let run = |area: &str, json: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_systole"))
            .current_dir(d)
            .env("SYSTOLE_RTL_CACHE", concat!(env!("CARGO_TARGET_TMPDIR"), "/systole-area-cache"))
            .args(["sweep", model.to_str().unwrap(), "--hw", hw.to_str().unwrap(), "--input", "x.npy"])
            .args(["--set", "dram.latency_cycles=10,20", "--area", area, "--json", json])
            .output()
            .unwrap()
    };
    let rtl = run("rtl", "rtl.json");
    assert_ok(&rtl);
    let model_area = run("model", "model.json");
    assert_ok(&model_area);
    assert!(stdout(&rtl).contains("RTL area mm²"), "{}", stdout(&rtl));
    assert!(stdout(&rtl).contains("area from the RTL synthesized by yosys"), "{}", stdout(&rtl));
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let (r, m): (Value, Value) =
        (serde_json::from_str(&read("rtl.json")).unwrap(), serde_json::from_str(&read("model.json")).unwrap());
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/schema/sweep.schema.json")).unwrap()).unwrap();
    let errors = common::schema::validate(&schema, &r);
    assert!(errors.is_empty(), "rtl.json: {errors:#?}");
    assert_eq!(r["area_source"], "rtl");
    assert_eq!(m["area_source"], "model");
    assert_ne!(r["sweep_id"], m["sweep_id"], "the area source is part of what the sweep is");
    for i in 0..2 {
        let (pr, pm) = (&r["points"][i], &m["points"][i]);
        assert_eq!(pr["status"], "ok", "{pr}");
        assert_eq!(pr["cycles"], pm["cycles"], "the area changes no cycle");
        let (ar, am) = (pr["area_mm2"].as_f64().unwrap(), pm["area_mm2"].as_f64().unwrap());
        // The synthesized 4x4 is several times the analytical estimate
        // (README: 3.1x); the leakage follows the area.
        assert!(ar > 1.5 * am, "point {i}: RTL {ar} mm² against the model's {am}");
        assert!(pr["energy_pj"].as_f64().unwrap() > pm["energy_pj"].as_f64().unwrap());
    }
    // One hardware, one area.
    assert_eq!(r["points"][0]["area_mm2"], r["points"][1]["area_mm2"]);
}
