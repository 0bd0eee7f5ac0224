//! GELU written out element by element — `x·0.5·(1 + erf(x/√2))` (BERT)
//! or `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (GPT-2), in whatever
//! order the exporter wrote the products — becomes one `Op::Gelu`.
//!
//! Recognition is by evaluation, not by the node order: around every
//! `Erf`/`Tanh` node, a candidate region (from a value `x` to a value `y`,
//! made only of float element-wise ops and scalar constants, with no value
//! read outside it) is evaluated in f64 on a grid of `x` and must equal
//! the GELU of that form to within 1e-5. So a region that computes
//! something else is left alone, op by op.

use std::collections::{HashMap, HashSet};

use crate::ir::{BinaryOp, GeluForm, Graph, Node, Op, UnaryOp, ValueId};

/// Rewrites every recognised GELU region of `g` into one `Op::Gelu` node.
pub(crate) fn fuse(g: &mut Graph) {
    while let Some((region, x, y, form)) = find(g) {
        let at = region.iter().copied().max().unwrap_or(0);
        let name = g.nodes[at].name.clone();
        let gelu = Node { name, op: Op::Gelu(form), inputs: vec![x], outputs: vec![y] };
        let mut nodes = Vec::with_capacity(g.nodes.len());
        for (i, n) in std::mem::take(&mut g.nodes).into_iter().enumerate() {
            if i == at {
                nodes.push(gelu.clone());
            } else if !region.contains(&i) {
                nodes.push(n);
            }
        }
        g.nodes = nodes;
    }
}

fn producers(g: &Graph) -> HashMap<ValueId, usize> {
    g.nodes.iter().enumerate().map(|(i, n)| (n.outputs[0], i)).collect()
}

fn consumers(g: &Graph) -> HashMap<ValueId, Vec<usize>> {
    let mut c: HashMap<ValueId, Vec<usize>> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        for &v in &n.inputs {
            c.entry(v).or_default().push(i);
        }
    }
    c
}

fn scalar_const(n: &Node) -> Option<f64> {
    match &n.op {
        Op::Constant { data, .. } if data.len() == 1 => Some(data[0] as f64),
        _ => None,
    }
}

fn elementwise(n: &Node) -> bool {
    matches!(n.op, Op::Binary(_) | Op::Unary(_)) || scalar_const(n).is_some()
}

/// The first GELU region: (its nodes, x, y, form).
fn find(g: &Graph) -> Option<(HashSet<usize>, ValueId, ValueId, GeluForm)> {
    let prod = producers(g);
    let cons = consumers(g);
    for (u, n) in g.nodes.iter().enumerate() {
        let form = match n.op {
            Op::Unary(UnaryOp::Erf) => GeluForm::Erf,
            Op::Unary(UnaryOp::Tanh) => GeluForm::Tanh,
            _ => continue,
        };
        // x candidates: non-constant inputs walking back through
        // element-wise ops, nearest first.
        let mut xs = Vec::new();
        let mut frontier = vec![n.inputs[0]];
        for _ in 0..4 {
            let mut next = Vec::new();
            for v in frontier {
                if xs.contains(&v) {
                    continue;
                }
                xs.push(v);
                if let Some(&p) = prod.get(&v) {
                    if matches!(g.nodes[p].op, Op::Binary(_)) {
                        next.extend(
                            g.nodes[p]
                                .inputs
                                .iter()
                                .filter(|&&i| prod.get(&i).is_none_or(|&q| scalar_const(&g.nodes[q]).is_none())),
                        );
                    }
                }
            }
            frontier = next;
        }
        // y candidates: the single-consumer chain forward.
        let mut ys = Vec::new();
        let mut v = n.outputs[0];
        for _ in 0..4 {
            match cons.get(&v).map(Vec::as_slice) {
                Some([c]) if matches!(g.nodes[*c].op, Op::Binary(_)) => {
                    v = g.nodes[*c].outputs[0];
                    ys.push(v);
                }
                _ => break,
            }
        }
        for &y in &ys {
            for &x in &xs {
                if let Some(region) = region(g, &prod, &cons, x, y, u) {
                    if verify(g, &region, x, y, form) {
                        return Some((region, x, y, form));
                    }
                }
            }
        }
    }
    None
}

/// The nodes computing `y` from `x` and scalar constants, if they are all
/// element-wise, include node `u`, and nothing outside reads their values.
fn region(
    g: &Graph,
    prod: &HashMap<ValueId, usize>,
    cons: &HashMap<ValueId, Vec<usize>>,
    x: ValueId,
    y: ValueId,
    u: usize,
) -> Option<HashSet<usize>> {
    let mut set = HashSet::new();
    let mut stack = vec![y];
    while let Some(v) = stack.pop() {
        if v == x {
            continue;
        }
        let &p = prod.get(&v)?;
        if !elementwise(&g.nodes[p]) {
            return None;
        }
        if set.insert(p) {
            stack.extend(g.nodes[p].inputs.iter().copied());
        }
        if set.len() > 16 {
            return None;
        }
    }
    if !set.contains(&u) {
        return None;
    }
    for &p in &set {
        let out = g.nodes[p].outputs[0];
        if out == y {
            continue;
        }
        if g.outputs.contains(&out) || cons.get(&out).is_some_and(|c| c.iter().any(|k| !set.contains(k))) {
            return None;
        }
    }
    Some(set)
}

fn gelu_ref(x: f64, form: GeluForm) -> f64 {
    match form {
        GeluForm::Erf => 0.5 * x * (1.0 + erf64(x / std::f64::consts::SQRT_2)),
        GeluForm::Tanh => 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh()),
    }
}

/// erf by its Taylor series (|x| ≤ 5 is all the check needs).
fn erf64(x: f64) -> f64 {
    let (mut term, mut sum) = (x, x);
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * std::f64::consts::FRAC_2_SQRT_PI
}

fn verify(g: &Graph, region: &HashSet<usize>, x: ValueId, y: ValueId, form: GeluForm) -> bool {
    let mut order: Vec<usize> = region.iter().copied().collect();
    order.sort_unstable();
    (-40..=40).all(|i| {
        let xv = i as f64 * 0.125;
        let mut vals: HashMap<ValueId, f64> = HashMap::from([(x, xv)]);
        for &p in &order {
            let n = &g.nodes[p];
            let arg = |k: usize| vals.get(&n.inputs[k]).copied();
            let r = match &n.op {
                Op::Constant { .. } => scalar_const(n),
                Op::Unary(UnaryOp::Erf) => arg(0).map(erf64),
                Op::Unary(UnaryOp::Tanh) => arg(0).map(f64::tanh),
                Op::Binary(b) => arg(0).zip(arg(1)).map(|(a, c)| match b {
                    BinaryOp::Add => a + c,
                    BinaryOp::Sub => a - c,
                    BinaryOp::Mul => a * c,
                    BinaryOp::Div => a / c,
                    BinaryOp::Max => a.max(c),
                }),
                _ => None,
            };
            let Some(r) = r else { return false };
            vals.insert(n.outputs[0], r);
        }
        vals.get(&y).is_some_and(|&v| (v - gelu_ref(xv, form)).abs() <= 1e-5 * (1.0 + xv.abs()))
    })
}
