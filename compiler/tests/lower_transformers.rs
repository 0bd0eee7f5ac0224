//! The bundled transformers lower to programs (issue 10): every variant
//! compiles for the default configuration, the host runs only
//! input preprocessing (embeddings, masks, moves of int64 ids), and an unsupported transformer
//! node is refused naming it.

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
        for cfg in [isa::HwConfig::default_16x16()] {
            let lowered =
                compiler::lower::lower(&g, &cfg).unwrap_or_else(|e| panic!("{model} {variant} on {}: {e}", cfg.name));
            let host = compiler::lower::transformer::host_nodes(&g).unwrap();
            for &i in &host {
                let n = &g.nodes[i];
                let int64_move = g.values[n.outputs[0]].ty == compiler::ir::ElemType::I64;
                let op = n.op.name();
                assert!(
                    matches!(op, "embedding" | "mask_select") || int64_move,
                    "{model}: `{}` ({op}) runs on the host",
                    n.name
                );
            }
            println!(
                "{model} {variant} on {}: {} instructions, {} layers, {} host nodes",
                cfg.name,
                lowered.program.code.len(),
                lowered.layers.len(),
                host.len()
            );
        }
    }
}
