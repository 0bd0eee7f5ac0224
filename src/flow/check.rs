//! The layer check: after an inference, every lowered layer's output
//! buffer in device memory, and the final output, against the reference
//! interpreter, bit for bit. The first difference is named by run, layer,
//! instruction range, value, element (position and, for a GEMM layer, the
//! n-tile) and device address.
//!
//! The check streams: the interpreter evaluates one node at a time and
//! each value is compared with the device as soon as it exists and freed
//! after its last use, so its memory is the live values, not the whole
//! network's.

use super::layers::LayerMeta;
use super::{shape_text, Compiled, FlowError, Result, RunNumber};
use compiler::interp::{self, StreamError, Tensor};
use compiler::ir::{ElemType, Graph, Op, ValueId};
use driver::{Driver, Inference};
use isa::layout::Layout;
use isa::program::{DType, LayerOp, Program};
use isa::{Device, HwConfig};

/// One checked layer: its index in the program's layers, the value it
/// writes and the device layout of its buffer.
struct Checked {
    layer: usize,
    value: ValueId,
    layout: Layout,
}

/// What an inference is checked against: the graph the program was
/// compiled from and, for each layer (views excepted), its value and
/// layout.
pub struct Checker {
    graph: Graph,
    /// For a float-input graph, its input QuantizeLinear's output: where
    /// an already quantized input enters, and what the host's quantization
    /// is checked against.
    quantized_entry: Option<ValueId>,
    checked: Vec<Checked>,
    views: usize,
}

/// The input of a run as the host was given it.
#[derive(Clone, Copy, Debug)]
pub enum RunInput<'a> {
    /// Float, quantized on the host.
    Float(&'a [f32]),
    /// Already quantized.
    Quant,
}

impl Checker {
    /// The checker of a compiled program: `graph` is the model it was
    /// compiled from (see [`recorded_graph`]), `layers` its layers.
    pub fn new(graph: Graph, prog_name: &str, layers: &[LayerMeta]) -> Result<Checker> {
        let input = |m: String| FlowError::input(format!("--check: {prog_name}: {m}"));
        if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
            return Err(input(format!(
                "the recorded graph has {} inputs and {} outputs; one of each is supported",
                graph.inputs.len(),
                graph.outputs.len()
            )));
        }
        let mut checked = Vec::new();
        let mut views = 0;
        for (k, l) in layers.iter().enumerate() {
            if l.is_view() {
                views += 1;
                continue;
            }
            let id = graph.value(&l.value).ok_or_else(|| {
                input(format!("layer `{}` writes `{}`, which the recorded graph does not have", l.name, l.value))
            })?;
            let layout = l.layout.clone();
            if layout.offsets().len() != graph.values[id].elements() {
                return Err(input(format!(
                    "layer `{}`: the layout of `{}` does not hold its {} elements",
                    l.name,
                    l.value,
                    graph.values[id].elements()
                )));
            }
            checked.push(Checked { layer: k, value: id, layout });
        }
        let quantized_entry = quantized_entry(&graph);
        Ok(Checker { graph, quantized_entry, checked, views })
    }

    /// Layers compared per run.
    pub fn layers(&self) -> usize {
        self.checked.len()
    }

    /// Layers not compared: views of their input's buffer.
    pub fn views(&self) -> usize {
        self.views
    }

    /// Compares run `run`'s layers and output (`inf`, with the device still
    /// holding the run's memory) with the interpreter on the same input.
    pub fn check<D: Device>(
        &self,
        drv: &mut Driver<D>,
        model: Compiled<'_>,
        input: RunInput<'_>,
        inf: &Inference,
        run: RunNumber,
    ) -> Result<()> {
        let g = &self.graph;
        let x = g.inputs[0];
        let xv = &g.values[x];
        // The float input through the whole graph (so the host's
        // quantization is checked too), or the device's quantized input
        // from the graph's quantized entry on.
        let given = match (xv.ty, input, self.quantized_entry) {
            (ElemType::F32, RunInput::Float(f), _) => (x, Tensor::float(xv.shape.clone(), f.to_vec())),
            (ElemType::F32, RunInput::Quant, Some(q)) => (q, Tensor::quant(xv.shape.clone(), inf.input_q.clone())),
            (ElemType::F32, RunInput::Quant, None) => {
                return Err(FlowError::input(
                    "--check: the model's float input does not feed a QuantizeLinear; give a float32 array",
                ))
            }
            _ => (x, Tensor::quant(xv.shape.clone(), inf.input_q.clone())),
        };
        let host_quantized = matches!(input, RunInput::Float(_)).then_some(self.quantized_entry).flatten();
        let out = g.outputs[0];
        let visit = |id: ValueId, t: &Tensor| -> Result<()> {
            if Some(id) == host_quantized {
                self.host_quantization(id, t, inf, run)?;
            }
            for c in self.checked.iter().filter(|c| c.value == id) {
                self.layer(drv, &model.layers[c.layer], c, model.cfg, t, run)?;
            }
            if id == out {
                self.output(t, inf, run)?;
            }
            Ok(())
        };
        interp::run_streaming(g, vec![given], visit).map_err(|e| match e {
            StreamError::Visit(e) => e,
            StreamError::Interp(e) => {
                FlowError::input(format!("--check: the reference interpreter failed on {run}: {e}"))
            }
        })
    }

    /// The host's quantization of a float input.
    fn host_quantization(&self, q: ValueId, want: &Tensor, inf: &Inference, run: RunNumber) -> Result<()> {
        let Some(want) = want.as_quant() else { return Ok(()) };
        match (0..want.len()).find(|&i| inf.input_q.get(i) != Some(&want[i])) {
            None => Ok(()),
            Some(i) => Err(FlowError::check(format!(
                "check failed: {run}, the host's quantization of the input into `{}`: element {i}: device input {}, \
                 reference {}",
                self.graph.values[q].name,
                inf.input_q.get(i).map_or_else(|| "missing".to_string(), |v| v.to_string()),
                want[i]
            ))),
        }
    }

    fn layer<D: Device>(
        &self,
        drv: &mut Driver<D>,
        l: &LayerMeta,
        c: &Checked,
        cfg: &HwConfig,
        reference: &Tensor,
        run: RunNumber,
    ) -> Result<()> {
        let want = reference.as_quant().ok_or_else(|| {
            FlowError::input(format!("--check: layer `{}`: the reference value `{}` is not quantized", l.name, l.value))
        })?;
        let image = drv
            .read_mem(l.addr, c.layout.bytes())
            .map_err(|e| FlowError::input(format!("--check: reading layer `{}`'s buffer: {e}", l.name)))?;
        let unsigned = l.dtype == DType::U8;
        let element = |off: usize| if unsigned { image[off] as i32 } else { image[off] as i8 as i32 };
        let offsets = c.layout.offsets();
        let Some(idx) = offsets.iter().zip(want).position(|(&off, &r)| element(off) != r) else {
            return Ok(());
        };
        let (got, r, off) = (element(offsets[idx]), want[idx], offsets[idx]);
        let (pos, channel) = position(&l.shape, idx);
        let tile = if matches!(l.op, LayerOp::Conv | LayerOp::Dense) {
            // Output channels are the GEMM's columns, `array.cols` to an
            // n-tile; they are dimension 1 of both [1, C, H, W] and [rows, N].
            let cols = cfg.array.cols as usize;
            let t = channel / cols;
            let channels = l.shape.get(1).map_or(channel + 1, |&c| c as usize);
            format!(", n-tile {t} (output channels {}..{})", t * cols, ((t + 1) * cols).min(channels))
        } else {
            String::new()
        };
        let mismatches = offsets.iter().zip(want).filter(|(&o, &w)| element(o) != w).count();
        Err(FlowError::check(format!(
            "check failed: {run}, layer `{}` ({}, instructions {}..{}), value `{}` {}: element {idx} \
             {pos}{tile}: device {got}, reference {r} (device address {:#x}); {mismatches} of {} elements differ",
            l.name,
            l.op,
            l.first,
            l.last,
            l.value,
            shape_text(&l.shape),
            l.addr + off as u64,
            want.len()
        )))
    }

    /// The final output, bit for bit.
    fn output(&self, reference: &Tensor, inf: &Inference, run: RunNumber) -> Result<()> {
        let name = &self.graph.values[self.graph.outputs[0]].name;
        if let Some(want) = reference.as_float() {
            if let Some((i, (g, w))) =
                inf.output.iter().zip(want).enumerate().find(|(_, (g, w))| g.to_bits() != w.to_bits())
            {
                return Err(FlowError::check(format!(
                    "check failed: {run}, output `{name}` element {i}: device {g:?} ({:#010x}), reference {w:?} \
                     ({:#010x})",
                    g.to_bits(),
                    w.to_bits()
                )));
            }
        } else if let Some(want) = reference.as_quant() {
            if let Some((i, (g, w))) = inf.output_q.iter().zip(want).enumerate().find(|(_, (g, w))| g != w) {
                return Err(FlowError::check(format!(
                    "check failed: {run}, output `{name}` element {i}: device {g}, reference {w}"
                )));
            }
        }
        Ok(())
    }
}

/// The graph a compiled program records for the check.
pub fn recorded_graph(prog: &Program, prog_name: &str) -> Result<Graph> {
    if prog.meta.graph.is_empty() {
        return Err(FlowError::input(format!(
            "--check: {prog_name} records no graph for the reference interpreter; recompile it with \
             `systole compile` (without --no-graph)"
        )));
    }
    compiler::ir_codec::decode_with_data(&prog.meta.graph, &prog.data)
        .map_err(|e| FlowError::input(format!("--check: {prog_name}: the recorded graph does not decode: {e}")))
}

/// The output of a float-input graph's input QuantizeLinear, if any.
fn quantized_entry(g: &Graph) -> Option<ValueId> {
    let x = *g.inputs.first()?;
    if g.values[x].ty != ElemType::F32 {
        return None;
    }
    let n = g.nodes.iter().find(|n| n.inputs == [x] && matches!(n.op, Op::Quantize))?;
    // Entering there must leave nothing else reading the float input.
    let others = g.nodes.iter().filter(|m| m.inputs.contains(&x)).count();
    (others == 1).then_some(n.outputs[0])
}

/// Where an element of a value is: `[c, h, w]` for NCHW, `[row, col]` for
/// 2-D; and its channel (column).
fn position(shape: &[u64], idx: usize) -> (String, usize) {
    let idx = idx as u64;
    match shape[..] {
        [1, _, h, w] => {
            let (ch, y, x) = (idx / (h * w), idx / w % h, idx % w);
            (format!("[c={ch}, h={y}, w={x}]"), ch as usize)
        }
        [_, cols] => (format!("[row={}, col={}]", idx / cols, idx % cols), (idx % cols) as usize),
        [_] => (format!("[{idx}]"), idx as usize),
        _ => (format!("(flat index {idx})"), 0),
    }
}
