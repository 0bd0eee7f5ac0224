//! A batch of N inferences in one program: the graph with its leading
//! (batch) dimension 1 made N, so a dense layer becomes one GEMM whose rows
//! are the batch — each weight tile loaded once and streamed past N rows
//! instead of N programs each loading every weight. A feature map becomes
//! N NHWC images one after the other (`Layout::Nhwc`'s `n`); a convolution
//! on the band path passes every image's bands under its weights (loaded
//! once when they stay resident), the ops without weights run image by
//! image (`lower::per_image`).

use crate::ir::{Graph, GraphError, Op};

/// `g` batched `n` times (`n >= 1`): every value's leading dimension, which
/// must be 1, becomes `n`, as do reshapes' leading target dimensions.
pub fn with_batch(g: &Graph, n: usize) -> Result<Graph, GraphError> {
    let err = |node: &str, op: &'static str, why: String| GraphError { node: node.to_string(), op, why };
    if n == 0 {
        return Err(err(&g.name, "batch", "the batch size must be at least 1".into()));
    }
    let mut out = g.clone();
    if n == 1 {
        return Ok(out);
    }
    for node in &mut out.nodes {
        let name = node.name.clone();
        let op = node.op.name();
        match &mut node.op {
            Op::Flatten { axis: 0 } => {
                return Err(err(&name, op, "flatten at axis 0 would merge the batch into the features".into()))
            }
            Op::Transpose { perm } if perm.first() != Some(&0) => {
                return Err(err(&name, op, format!("permutation {perm:?} moves the batch dimension")))
            }
            Op::Concat { axis: 0 } => return Err(err(&name, op, "concatenation along the batch dimension".into())),
            Op::Reshape { shape } => match shape.first_mut() {
                Some(d) if *d == 1 => *d = n,
                _ => return Err(err(&name, op, format!("target shape {shape:?} has no leading batch dimension 1"))),
            },
            _ => {}
        }
    }
    for v in &mut out.values {
        let rank = v.shape.len();
        match v.shape.first_mut() {
            Some(d) if *d == 1 && rank >= 2 => *d = n,
            _ => {
                return Err(err(
                    &v.name,
                    "batch",
                    format!("value shape {:?} has no leading batch dimension 1 (rank 2 or more)", v.shape),
                ))
            }
        }
    }
    out.validate()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DenseParams, ElemType, Node, PoolParams, Quant, Value, WeightType};

    fn value(name: &str, shape: Vec<usize>, ty: ElemType) -> Value {
        Value { name: name.into(), shape, ty, quant: Some(Quant { scale: 0.1, zero_point: 0 }) }
    }

    #[test]
    fn graphs_batch_along_their_leading_dimension() {
        let d = DenseParams {
            k: 3,
            n: 2,
            weights: vec![1; 6],
            w_scale: vec![1.0; 2],
            bias: vec![0; 2],
            qmin: -128,
            qmax: 127,
            w_type: WeightType::I8,
        };
        let g = Graph {
            name: "g".into(),
            values: vec![value("x", vec![1, 3], ElemType::I8), value("y", vec![1, 2], ElemType::I8)],
            nodes: vec![Node { name: "fc".into(), op: Op::Dense(d), inputs: vec![0], outputs: vec![1] }],
            inputs: vec![0],
            outputs: vec![1],
        };
        g.validate().unwrap();
        let b = with_batch(&g, 5).unwrap();
        assert_eq!((b.values[0].shape.clone(), b.values[1].shape.clone()), (vec![5, 3], vec![5, 2]));
        assert_eq!(with_batch(&g, 1).unwrap(), g);
        assert!(with_batch(&g, 0).is_err());
        let mut flat = g.clone();
        flat.values[0].shape = vec![3];
        let e = with_batch(&flat, 2).unwrap_err().to_string();
        assert!(e.contains("no leading batch dimension"), "{e}");
        // A feature map batches like a row.
        let mut pool = g.clone();
        pool.values = vec![value("x", vec![1, 3, 4, 4], ElemType::I8), value("y", vec![1, 3, 2, 2], ElemType::I8)];
        pool.nodes[0].op =
            Op::MaxPool(PoolParams { kernel: [2, 2], strides: [2, 2], pads: [0; 4], count_include_pad: false });
        pool.validate().unwrap();
        let b = with_batch(&pool, 3).unwrap();
        assert_eq!(b.values[1].shape, vec![3, 3, 2, 2]);
        let mut concat = g.clone();
        concat.nodes[0].op = Op::Concat { axis: 0 };
        let e = with_batch(&concat, 2).unwrap_err().to_string();
        assert!(e.contains("`fc`") && e.contains("batch dimension"), "{e}");
    }
}
