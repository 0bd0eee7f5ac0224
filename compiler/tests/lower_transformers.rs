//! The bundled transformers lower to programs (issue 10): every variant
//! compiles for the default configuration with nothing left to the host
//! (embeddings and masks are gathers reading the int64 inputs, which are
//! the program's input tensors as given).

use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/transformers")
}

fn import(model: &str, variant: &str) -> compiler::ir::Graph {
    let bytes = std::fs::read(dir().join(model).join(format!("{variant}.onnx"))).unwrap();
    compiler::onnx::import(&bytes).unwrap_or_else(|e| panic!("{model} {variant}: {e}"))
}

const MODELS: [(&str, &str); 5] = [
    ("tinybert", "int8_qdq"),
    ("tinybert", "int8_qdq_float_matmul_out"),
    ("tinygpt", "int8_qdq"),
    ("tinygpt", "int8_qdq_float_matmul_out"),
    ("tinybert_nm24", "int8_qdq_float_matmul_out"),
];

#[test]
fn bundled_transformers_lower() {
    for (model, variant) in MODELS {
        let g = import(model, variant);
        if std::env::var("SHOW_GRAPH").is_ok() {
            println!("{g}");
        }
        let cfg = isa::HwConfig::default_16x16();
        let lowered =
            compiler::lower::lower(&g, &cfg).unwrap_or_else(|e| panic!("{model} {variant} on {}: {e}", cfg.name));
        let host = compiler::lower::transformer::host_nodes(&g).unwrap();
        let names: Vec<&str> = host.iter().map(|&i| g.nodes[i].name.as_str()).collect();
        assert!(host.is_empty(), "{model} {variant}: {names:?} run on the host");
        // The program's inputs are the graph's int64 inputs themselves.
        let mut inputs: Vec<(&str, isa::program::DType)> = lowered
            .program
            .tensors
            .iter()
            .filter(|t| t.role == isa::program::TensorRole::Input)
            .map(|t| (t.name.as_str(), t.dtype))
            .collect();
        let mut want: Vec<(&str, isa::program::DType)> =
            g.inputs.iter().map(|&i| (g.values[i].name.as_str(), isa::program::DType::I64)).collect();
        inputs.sort_unstable_by_key(|t| t.0);
        want.sort_unstable_by_key(|t| t.0);
        assert_eq!(inputs, want, "{model} {variant}");
        let gathers = lowered.layers.iter().filter(|l| l.op == isa::program::LayerOp::Gather).count();
        assert_eq!(gathers, if model == "tinygpt" { 1 } else { 4 }, "{model} {variant}");
        println!(
            "{model} {variant} on {}: {} instructions, {} layers, {} host nodes",
            cfg.name,
            lowered.program.code.len(),
            lowered.layers.len(),
            host.len()
        );
    }
}
