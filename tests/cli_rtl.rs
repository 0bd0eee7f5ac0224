//! The CLI's RTL backends (`--features rtl`, needs Verilator): `sim` and
//! `run` on the verilated accelerator and on both backends compared, and
//! waveforms. Run by `scripts/test.sh`.
#![cfg(feature = "rtl")]

mod common;
use common::*;

const TINY: &str = "examples/hw/tiny.toml";

fn asm_gemm(d: &std::path::Path) {
    let src = root().join("examples/asm/gemm_4x4.s");
    let o = systole(d, &["asm", src.to_str().unwrap(), "--hw", root().join(TINY).to_str().unwrap(), "-o", "g.sbin"]);
    assert_ok(&o);
}

#[test]
fn sim_on_both_backends_agrees_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    asm_gemm(d);
    let hw = root().join(TINY);
    let a = root().join("examples/asm/gemm_4x4.a.npy");
    let w = root().join("examples/asm/gemm_4x4.w.npy");
    let args = |backend: &str| {
        vec![
            "sim".to_string(),
            "g.sbin".into(),
            "--hw".into(),
            hw.display().to_string(),
            "--load".into(),
            format!("0x1000={}", a.display()),
            "--load".into(),
            format!("0x1100={}", w.display()),
            "--dump".into(),
            format!("0x2000:i32:4x4={backend}.npy"),
            "--backend".into(),
            backend.into(),
        ]
    };
    for backend in ["sim", "rtl", "both"] {
        let v = args(backend);
        let o = systole(d, &v.iter().map(String::as_str).collect::<Vec<_>>());
        assert_ok(&o);
        assert!(stdout(&o).contains("135 cycles") || stdout(&o).contains("135"), "{}", stdout(&o));
        if backend == "both" {
            assert!(stdout(&o).contains("the model and the RTL agree"), "{}", stdout(&o));
        }
    }
    let sim = std::fs::read(d.join("sim.npy")).unwrap();
    assert_eq!(std::fs::read(d.join("rtl.npy")).unwrap(), sim);
    assert_eq!(std::fs::read(d.join("both.npy")).unwrap(), sim);
    let want = std::fs::read(root().join("examples/asm/gemm_4x4.c.npy")).unwrap();
    assert_eq!(sim, want);
}

/// Vector instructions run on the RTL's vector unit: `both` agrees with
/// the model; a configuration whose `vector_lanes` is not `array.cols` is
/// refused by name.
#[test]
fn vector_programs_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = "sync queue=compute\nvop op=exp dst=0 a=0 rows=1 len=4\nvred op=sum a=0 dst=1 rows=1 len=4\nfinish\n";
    std::fs::write(d.join("vec.s"), text).unwrap();
    let hw = root().join(TINY);
    assert_ok(&systole(d, &["asm", "vec.s", "--hw", hw.to_str().unwrap(), "-o", "vec.sbin"]));
    let o = systole(d, &["sim", "vec.sbin", "--hw", hw.to_str().unwrap(), "--backend", "both"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("the model and the RTL agree"), "{}", stdout(&o));
    let lanes = format!("vector_lanes = 2\n{}", std::fs::read_to_string(&hw).unwrap());
    std::fs::write(d.join("lanes.toml"), lanes).unwrap();
    assert_ok(&systole(d, &["asm", "vec.s", "--hw", "lanes.toml", "-o", "lanes.sbin"]));
    let o = systole(d, &["sim", "lanes.sbin", "--hw", "lanes.toml", "--backend", "rtl"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("vector_lanes = 2"), "{}", stderr(&o));
}

#[test]
fn vcd_waveforms_of_an_rtl_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    asm_gemm(d);
    let hw = root().join(TINY);
    let o = systole(d, &["sim", "g.sbin", "--hw", hw.to_str().unwrap(), "--backend", "rtl", "--vcd", "w.vcd"]);
    assert_ok(&o);
    let text = std::fs::read_to_string(d.join("w.vcd")).unwrap();
    assert!(text.starts_with("$version") && text.contains("$var") && text.contains("m_arvalid"), "not a VCD");
    assert!(!d.join("w.vcd.partial").exists());
    // Waveforms come from the RTL only.
    let o = systole(d, &["sim", "g.sbin", "--hw", hw.to_str().unwrap(), "--vcd", "x.vcd"]);
    assert_fails(&o, 2, &["--vcd", "--backend rtl"], d, &["x.vcd"]);
}

#[test]
fn run_a_compiled_model_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = root().join("examples/models/digits_cnn_nm24.onnx");
    let hw = root().join(TINY);
    let o = systole(d, &["compile", model.to_str().unwrap(), "--hw", hw.to_str().unwrap(), "-o", "m.sbin"]);
    assert_ok(&o);
    let x = root().join("examples/models/digits_x.npy");
    let o = systole(
        d,
        &[
            "run",
            "m.sbin",
            "--input",
            x.to_str().unwrap(),
            "--out",
            "out",
            "--backend",
            "both",
            "--check",
            "--json",
            "r.json",
        ],
    );
    assert_ok(&o);
    assert!(stdout(&o).contains("backend both"), "{}", stdout(&o));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("r.json")).unwrap()).unwrap();
    assert_eq!(r["backend"], "both");
}

/// int4 weights on the RTL: the digits_int4 models (all-int4 CNN, mixed
/// MLP) compiled for the tiny array with int4 weights run on both backends
/// in lockstep, cycle for cycle, and every layer agrees with the
/// interpreter; the i4 tiles are really used.
#[test]
fn int4_models_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tiny = std::fs::read_to_string(root().join(TINY)).unwrap();
    let int4 = tiny.replace("[array]\n", "[array]\nweight_precisions = [\"int8\", \"int4\"]\n");
    assert_ne!(int4, tiny, "the tiny config has an [array] table");
    std::fs::write(d.join("int4.toml"), int4).unwrap();
    let data = root().join("compiler/tests/data/digits_int4");
    let image: Vec<f32> = (0..64).map(|i| (i % 17) as f32 / 16.0).collect();
    write_npy(&d.join("x_cnn.npy"), &[1, 1, 8, 8], &image);
    write_npy(&d.join("x_mlp.npy"), &[1, 64], &image);
    for (model, x) in [("cnn_dense/int4_qdq.onnx", "x_cnn.npy"), ("mlp_dense/mixed_qdq.onnx", "x_mlp.npy")] {
        let onnx = data.join(model);
        let o = systole(d, &["compile", onnx.to_str().unwrap(), "--hw", "int4.toml", "-o", "m.sbin"]);
        assert_ok(&o);
        let o = systole(d, &["disasm", "m.sbin"]);
        assert_ok(&o);
        assert!(stdout(&o).contains("wfmt=i4"), "{model}: no i4 tile in\n{}", stdout(&o));
        let o = systole(d, &["run", "m.sbin", "--input", x, "--backend", "both", "--check"]);
        assert_ok(&o);
        assert!(stdout(&o).contains("agree with the reference interpreter"), "{model}: {}", stdout(&o));
    }
}

/// 2:4-sparse weights on the RTL's sparse PEs: the digits 2:4 CNN
/// (cnn_nm24) compiled with `--weights auto` for the tiny array and the
/// 16x16 one with `array.sparsity_2_4` runs on both backends in lockstep,
/// cycle for cycle, and agrees with the interpreter; the i8s24 tiles and
/// the second input rows (`a_bstride`) are really used.
#[test]
fn sparse24_cnn_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tiny = std::fs::read_to_string(root().join(TINY)).unwrap();
    let sparse = tiny.replace("[array]\n", "[array]\nsparsity_2_4 = true\n");
    assert_ne!(sparse, tiny, "the tiny config has an [array] table");
    std::fs::write(d.join("tiny24.toml"), sparse).unwrap();
    let default24 = root().join("examples/hw/sparse24.toml");
    let onnx = root().join("compiler/tests/data/digits/cnn_nm24/int8_qdq.onnx");
    let image: Vec<f32> = (0..64).map(|i| (i * 7 % 17) as f32 / 16.0).collect();
    write_npy(&d.join("x.npy"), &[1, 1, 8, 8], &image);
    for hw in ["tiny24.toml", default24.to_str().unwrap()] {
        let o = systole(d, &["compile", onnx.to_str().unwrap(), "--hw", hw, "--weights", "auto", "-o", "m.sbin"]);
        assert_ok(&o);
        let o = systole(d, &["disasm", "m.sbin"]);
        assert_ok(&o);
        let text = stdout(&o);
        assert!(text.contains("wfmt=i8s24") && text.contains("a_bstride="), "{hw}: no 2:4 tile in\n{text}");
        let o = systole(d, &["run", "m.sbin", "--input", "x.npy", "--backend", "both", "--check"]);
        assert_ok(&o);
        assert!(stdout(&o).contains("agree with the reference interpreter"), "{hw}: {}", stdout(&o));
    }
}

/// A gather (indexed `load`) on both backends: the ids in the program's
/// own window; the two agree on a good one, and a bad id is the same
/// IndexOutOfRange fault on both (exit 2, naming the id's position).
#[test]
fn gathers_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Ids at 0x2000 are the bytes --load puts there; the table is at 0x1000.
    let text = "load dram=0x1000 stride=4 rows=3 cols=4 idx=i32 idx_addr=0x2000 limit=4 @signal(compute)\n\
                sync queue=compute @wait(load) @signal(store)\n\
                store dram=0x3000 stride=4 rows=3 cols=4 @wait(compute)\nfinish\n";
    std::fs::write(d.join("g.s"), text).unwrap();
    let hw = root().join(TINY);
    assert_ok(&systole(d, &["asm", "g.s", "--hw", hw.to_str().unwrap(), "-o", "g.sbin"]));
    let table: Vec<i8> = (0..16).collect();
    write_npy(&d.join("t.npy"), &[16], &table);
    for (name, ids) in [("ok", [2i32, 0, 3]), ("bad", [1, 3, 4])] {
        write_npy(&d.join(format!("{name}.npy")), &[3], &ids);
        let o = systole(
            d,
            &[
                "sim",
                "g.sbin",
                "--hw",
                hw.to_str().unwrap(),
                "--load",
                "0x1000=t.npy",
                "--load",
                &format!("0x2000={name}.npy"),
                "--dump",
                &format!("0x3000:i8:3x4={name}_out.npy"),
                "--backend",
                "both",
            ],
        );
        if name == "ok" {
            assert_ok(&o);
            assert!(stdout(&o).contains("the model and the RTL agree"), "{}", stdout(&o));
            // Table rows 2, 0, 3 (the npy's data is its last 12 bytes).
            let out = std::fs::read(d.join("ok_out.npy")).unwrap();
            let want: Vec<u8> = [8u8, 9, 10, 11, 0, 1, 2, 3, 12, 13, 14, 15].to_vec();
            assert_eq!(out[out.len() - 12..], want[..]);
        } else {
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
            let e = stderr(&o);
            assert!(e.contains("index out of range") && e.contains("id 2 of the load"), "{e}");
        }
    }
}

/// A transformer on both backends: tinybert_nm24 compiled with `--weights
/// auto` for the 16x16 with 2:4-sparse PEs (its exactly 2:4 Linear layers
/// on i8s24 tiles, Kᵀ on transposed tiles, embeddings and masks gathered,
/// softmax / LayerNorm / GELU on the vector unit) runs in lockstep, cycle
/// for cycle, and every layer agrees with the interpreter.
#[test]
fn transformer_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let onnx = root().join("compiler/tests/data/transformers/tinybert_nm24/int8_qdq_float_matmul_out.onnx");
    let hw = root().join("examples/hw/sparse24.toml");
    let o = systole(
        d,
        &["compile", onnx.to_str().unwrap(), "--hw", hw.to_str().unwrap(), "--weights", "auto", "-o", "t.sbin"],
    );
    assert_ok(&o);
    let o = systole(d, &["disasm", "t.sbin"]);
    assert_ok(&o);
    let text = stdout(&o);
    assert!(text.contains("trans=1") && text.contains("wfmt=i8s24"), "no transposed or 2:4 tile in\n{text}");
    let o = systole(d, &["run", "t.sbin", "--backend", "both", "--check"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.contains("backend both") && out.contains("agree with the reference interpreter"), "{out}");
}
