//! `systole::flow::reference::run_named`: a model's several named inputs
//! (int64 token ids, attention mask, token types; one extra leading
//! dimension is a batch) through the reference interpreter, outputs by
//! name. Uses the tinybert fixtures of `compiler/tests/data/transformers/`.

use std::path::{Path, PathBuf};

use compiler::npy::{decode, Array};
use systole::flow::reference::run_named;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler/tests/data/transformers/tinybert")
}

fn array(name: &str) -> Array {
    decode(&std::fs::read(dir().join("inputs").join(format!("{name}.npy"))).unwrap()).unwrap()
}

fn inputs() -> Vec<(String, Array)> {
    // The reference rows [16, 32] as a batch of 16 inferences of [1, 32].
    ["input_ids", "attention_mask", "token_type_ids"]
        .iter()
        .map(|n| (n.to_string(), Array { shape: vec![16, 1, 32], ..array(n) }))
        .collect()
}

#[test]
fn a_batch_of_three_int64_inputs_gives_every_output_by_name() {
    let g = compiler::onnx::import(&std::fs::read(dir().join("int8_qdq.onnx")).unwrap()).unwrap();
    let outs = run_named(&g, &inputs(), 16).unwrap();
    let names: Vec<&str> = outs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["last_hidden_state", "sentence_embedding"]);
    assert_eq!(outs[0].shape, [16, 1, 32, 128]);
    assert_eq!(outs[1].shape, [16, 1, 128]);
    // Sequence 3 alone (no batch dimension) gives the batch's row 3.
    let one: Vec<(String, Array)> = inputs()
        .into_iter()
        .map(|(n, a)| {
            let row = a.data[3 * 32 * 8..4 * 32 * 8].to_vec();
            (n, Array { elem: a.elem, shape: vec![1, 32], data: row })
        })
        .collect();
    let single = run_named(&g, &one, 16).unwrap();
    assert_eq!(single[0].shape, [1, 32, 128]);
    assert_eq!(single[0].data[..], outs[0].data[3 * 32 * 128..4 * 32 * 128]);
}

#[test]
fn missing_unknown_and_mismatched_inputs_are_refused_by_name() {
    let g = compiler::onnx::import(&std::fs::read(dir().join("int8_qdq.onnx")).unwrap()).unwrap();
    let mut two = inputs();
    two.pop();
    let err = run_named(&g, &two, 16).unwrap_err().to_string();
    assert!(err.contains("token_type_ids") && err.contains("0 times"), "{err}");

    let mut extra = inputs();
    extra.push(("position_ids".into(), array("input_ids")));
    let err = run_named(&g, &extra, 16).unwrap_err().to_string();
    assert!(err.contains("position_ids") && err.contains("no input"), "{err}");

    let mut short = inputs();
    short[1].1 = Array { shape: vec![8, 1, 32], data: short[1].1.data[..8 * 32 * 8].to_vec(), ..short[1].1.clone() };
    let err = run_named(&g, &short, 16).unwrap_err().to_string();
    assert!(err.contains("attention_mask") && err.contains("batch of 8"), "{err}");
}
