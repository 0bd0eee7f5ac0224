//! Packaging: the instruction stream assembled from phases, then code and
//! data placed in device memory, every data address rebased, the tensor map
//! and the per-layer facts (`LayerInfo`), the config and the encoded graph
//! recorded in the program's metadata.

use super::memory::MemoryPlan;
use super::unsupported;
use crate::gemm::{self, LowerError};
use crate::ir::{ElemType, Graph, Op, ValueId};
use crate::ir_codec::PackedRef;
use isa::instr::{self as ins, Deps, Instr, Queue};
use isa::program::{DType, LayerOp, Program, ProgramMeta, TensorInfo, TensorRole};
use isa::HwConfig;

/// Per-layer facts recorded in the program's metadata (`isa::program::LayerMeta`).
pub use isa::program::LayerMeta as LayerInfo;

/// The instruction stream of a graph: phases, each starting with every
/// queue idle and leaving no token behind, separated by barriers (STORE ->
/// COMPUTE -> LOAD `sync`s), so a layer reads its input only after the
/// previous layer's last store.
#[derive(Debug, Default)]
pub struct Code {
    instrs: Vec<Instr>,
    phases: usize,
    /// The DMA's figures for `staging::bound` (none: phases go in as given).
    staging: Option<super::staging::Dma>,
}

impl Code {
    /// An empty stream whose phases are kept within the configuration's
    /// DMA staging buffer (`staging::bound`).
    pub fn for_config(cfg: &HwConfig) -> Code {
        Code { staging: Some(super::staging::Dma::of(cfg)), ..Code::default() }
    }

    /// Appends a phase, separated from the previous one by a barrier.
    pub fn phase(&mut self, instrs: Vec<Instr>) {
        let instrs = match self.staging {
            Some(dma) => super::staging::bound(instrs, dma),
            None => instrs,
        };
        if self.phases > 0 {
            let sync = |queue: Queue, deps: Deps| Instr::from(ins::Sync { deps, queue: queue as u8 });
            self.instrs.push(sync(Queue::Store, Deps { push_prev: true, ..Deps::NONE }));
            self.instrs.push(sync(Queue::Compute, Deps { pop_next: true, push_prev: true, ..Deps::NONE }));
            self.instrs.push(sync(Queue::Load, Deps { pop_next: true, ..Deps::NONE }));
        }
        self.instrs.extend(instrs);
        self.phases += 1;
    }

    /// The stream so far, without a FINISH.
    pub fn into_instrs(self) -> Vec<Instr> {
        self.instrs
    }

    /// The index the next instruction gets.
    pub fn next_index(&self) -> usize {
        self.instrs.len()
    }
}

/// The program and its per-layer facts.
pub struct Lowered {
    pub program: Program,
    pub layers: Vec<LayerInfo>,
}

/// Places code and data, rebases every data address, builds the tensor map
/// and the meta.
pub fn package(
    (g, cfg): (&Graph, &HwConfig),
    code: Code,
    mem: MemoryPlan,
    dev_in: ValueId,
    layers: Vec<LayerInfo>,
    packed: &[Option<PackedRef>],
) -> Result<Lowered, LowerError> {
    let dev_out = match g.outputs[..] {
        [o] => g.nodes.iter().find(|n| n.outputs == [o] && matches!(n.op, Op::Dequantize)).map_or(o, |n| n.inputs[0]),
        _ => {
            return Err(unsupported(
                "(graph)",
                "output",
                format!("{} graph outputs; one is supported", g.outputs.len()),
            ))
        }
    };
    let in_name = g.values[g.inputs[0]].name.clone();
    let out_name = g.values[g.outputs[0]].name.clone();
    let tensors = [(dev_in, TensorRole::Input, in_name), (dev_out, TensorRole::Output, out_name)];
    package_tensors((g, cfg), code, mem, layers, packed, &tensors)
}

/// [`package`] with the tensor map given: each `(value, role, name)` is a
/// tensor of the value's buffer.
pub fn package_tensors(
    (g, cfg): (&Graph, &HwConfig),
    code: Code,
    mem: MemoryPlan,
    mut layers: Vec<LayerInfo>,
    packed: &[Option<PackedRef>],
    tensors: &[(ValueId, TensorRole, String)],
) -> Result<Lowered, LowerError> {
    let mut code = code.into_instrs();
    code.push(Instr::Finish(ins::Finish::default()));
    let data_addr = (align(code.len() * ins::INSTR_BYTES, 4096)) as u64;
    gemm::rebase_dram(&mut code, data_addr);
    let mem_bytes = align(data_addr as usize + mem.data().len(), 4096) as u64;
    if mem_bytes > cfg.dram_bytes() || mem_bytes > u32::MAX as u64 {
        return Err(unsupported(
            "(graph)",
            "memory",
            format!("needs {mem_bytes} bytes of device memory, the config has {}", cfg.dram_bytes()),
        ));
    }
    for l in &mut layers {
        l.addr += data_addr;
    }
    let tensor = |v: ValueId, role: TensorRole, name: &str| -> Result<TensorInfo, LowerError> {
        let val = &g.values[v];
        let b = mem
            .buffer(v)
            .ok_or_else(|| unsupported("(graph)", "output", format!("`{}` is not computed on the device", val.name)))?;
        Ok(TensorInfo {
            name: name.to_string(),
            role,
            dtype: dtype_of(val.ty),
            shape: val.shape.iter().map(|&d| d as u64).collect(),
            addr: b.addr + data_addr,
            layout: b.layout.clone(),
            scale: val.quant.map(|q| q.scale),
            zero_point: val.quant.map(|q| q.zero_point),
        })
    };
    let tensors =
        tensors.iter().map(|(v, role, name)| tensor(*v, *role, name)).collect::<Result<Vec<_>, LowerError>>()?;
    // What `systole run` needs without the model file: the hardware to
    // simulate, and the graph for the reference interpreter (`--check`).
    let meta = ProgramMeta {
        producer: "systole compiler".into(),
        source: g.name.clone(),
        layers: layers.clone(),
        config: Some(cfg.clone()),
        // Conv and dense weights as references to their packed bytes in
        // the data (each verified to unpack to the original), not a copy.
        graph: crate::ir_codec::encode_referencing(g, mem.data(), packed),
    };
    let program = Program {
        fingerprint: cfg.fingerprint(),
        config_name: cfg.name.clone(),
        code_addr: 0,
        code,
        data_addr,
        data: mem.into_data(),
        mem_bytes,
        tensors,
        meta,
    };
    program.validate_layout().map_err(|e| unsupported("(graph)", "program", e.to_string()))?;
    Ok(Lowered { program, layers })
}

/// The device element type of a quantized value.
pub fn dtype_of(t: ElemType) -> DType {
    match t {
        ElemType::U8 => DType::U8,
        ElemType::F32 => DType::F32,
        ElemType::I8 => DType::I8,
        ElemType::I64 => DType::I64,
    }
}

/// The layer record's op of a lowered node (only these reach the device).
pub fn layer_op(op: &Op) -> LayerOp {
    match op {
        Op::Conv(_) => LayerOp::Conv,
        Op::Dense(_) => LayerOp::Dense,
        Op::MaxPool(_) => LayerOp::MaxPool,
        Op::AvgPool(_) => LayerOp::AvgPool,
        Op::Add { .. } => LayerOp::Add,
        Op::Clamp { .. } => LayerOp::Clamp,
        Op::Flatten { .. } => LayerOp::Flatten,
        Op::Reshape { .. } => LayerOp::Reshape,
        Op::Concat { .. } => LayerOp::Concat,
        Op::Lut(_) => LayerOp::Lut,
        Op::Resize { .. } | Op::ResizeLinear(_) => LayerOp::Resize,
        Op::Embedding(_) | Op::MaskSelect { .. } => LayerOp::Gather,
        Op::Quantize | Op::Dequantize | Op::Transpose { .. } => unreachable!("not lowered to a layer"),
        op => unreachable!("{} is not lowered to a layer", op.name()),
    }
}

fn align(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Node, Quant, Value};
    use isa::layout::Layout;

    /// Packaging two hand-made phases and one buffer, without any other
    /// step: code before data, addresses rebased, a barrier between the
    /// phases, and a `.sbin` round trip that keeps code, data and layers.
    #[test]
    fn packaging_places_rebases_and_round_trips() {
        let q = Some(Quant { scale: 0.5, zero_point: 3 });
        let value = |name: &str, ty, quant| Value { name: name.into(), shape: vec![1, 8], ty, quant };
        let g = Graph {
            name: "pkg".into(),
            values: vec![value("x", ElemType::I8, q), value("y", ElemType::F32, None)],
            nodes: vec![Node { name: "dq".into(), op: Op::Dequantize, inputs: vec![0], outputs: vec![1] }],
            inputs: vec![0],
            outputs: vec![1],
        };
        let cfg = HwConfig::tiny_4x4();
        let mut mem = MemoryPlan::new(2);
        let addr = mem.alloc(8, 3);
        mem.set_buffer(0, super::super::memory::Buffer { addr, layout: Layout::Flat { rows: 1, cols: 8, perm: None } });
        let mut code = Code::default();
        let load = |dram| Instr::from(ins::Load { dram, stride: 8, rows: 1, cols: 4, ..Default::default() });
        code.phase(vec![load(addr as u32)]);
        code.phase(vec![load(addr as u32 + 4)]);
        let layer = LayerInfo {
            name: "x".into(),
            op: LayerOp::Clamp,
            first: 0,
            last: code.next_index(),
            macs: 0,
            value: "x".into(),
            addr,
            layout: Layout::Flat { rows: 1, cols: 8, perm: None },
            shape: vec![1, 8],
            dtype: DType::I8,
            scale: 0.5,
            zero_point: 3,
        };
        let lowered = package((&g, &cfg), code, mem, 0, vec![layer], &[None]).unwrap();
        let p = &lowered.program;
        // Two loads, a three-sync barrier, FINISH; data on the next 4 KiB.
        assert_eq!(p.code.len(), 6);
        assert_eq!(p.data_addr, 4096);
        let Instr::Load(l) = &p.code[4] else { panic!("{:?}", p.code[4]) };
        assert_eq!(l.dram as u64, p.data_addr + addr + 4);
        assert_eq!(lowered.layers[0].addr, p.data_addr + addr);
        assert_eq!(p.tensors[0].addr, p.data_addr + addr);
        let back = Program::from_bytes(&p.to_bytes()).unwrap();
        assert_eq!(back.code, p.code);
        assert_eq!(back.data, p.data);
        assert_eq!(back.meta.layers, lowered.layers);
        assert_eq!(crate::ir_codec::decode(&back.meta.graph).unwrap(), g);
    }
}
