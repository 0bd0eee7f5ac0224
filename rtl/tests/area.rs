//! `rtl::area` on the 4x4 configuration (`examples/hw/tiny.toml`): yosys'
//! generic and Xilinx syntheses give a sane report, and the synthesized area
//! is compared with the model's analytical one. Needs yosys (`apt-get
//! install -y yosys`); a missing yosys fails the test. In the RTL tier:
//! `cargo test -p rtl --features verilator --release --test area`.
//!
//! The first synthesis ignores the cache (so the test always runs yosys)
//! and stores its result in `target/tmp/systole-area-cache`, which the CLI's
//! test (`tests/cli_area.rs`) then finds.

use isa::HwConfig;
use rtl::area::{self, Fpga, Options};
use sim::energy::EnergyTable;

fn tiny() -> HwConfig {
    let text = include_str!("../../examples/hw/tiny.toml");
    HwConfig::from_toml(text).expect("tiny.toml is valid")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
}

#[test]
fn tiny_config_synthesizes_and_compares_with_the_model() {
    std::env::set_var("SYSTOLE_RTL_CACHE", concat!(env!("CARGO_TARGET_TMPDIR"), "/systole-area-cache"));
    let cfg = tiny();
    let table = EnergyTable::default();
    let mut passes = 0;
    let opts = Options { fpga: Some(Fpga::Xilinx), cache: false };
    let r = area::area(&cfg, &table, &opts, &mut |_| passes += 1).unwrap_or_else(|e| panic!("{e}"));
    println!("{r:#?}");
    assert!(passes > 50, "progress heard {passes} yosys passes");
    assert!(r.yosys.starts_with("Yosys "), "{}", r.yosys);
    let g = &r.generic;
    assert!(!g.cached && g.seconds > 0.0);
    assert!(g.uncosted.is_empty(), "cell types without a cost: {:?}", g.uncosted);

    // Every module, each instantiated as the RTL does (a requantizer per column).
    let module = |name: &str| {
        g.modules.iter().find(|m| m.module == name).unwrap_or_else(|| panic!("no module {name} in {:?}", g.modules))
    };
    for name in ["array", "requant", "compute", "dma_load", "dma_store", "check", "accel", "vec_unit"] {
        let m = module(name);
        // The dispatch check is combinational; every other unit holds state.
        assert!(m.cells > 100 && (m.flip_flops > 0) == (name != "check") && m.area_mm2 > 0.0, "{m:?}");
    }
    assert_eq!(module("requant").instances, cfg.array.cols as u64);
    assert_eq!(g.modules.iter().map(|m| m.cells).sum::<u64>(), g.cells);
    // The PEs hold at least an 8-bit input and a 32-bit partial sum each.
    let pes = cfg.peak_macs_per_cycle();
    assert!(module("array").flip_flops >= pes * (8 + 32), "{:?}", module("array"));

    // The buffers stay memories: the scratchpad and accumulator, costed as the
    // model costs them, and the DMA staging banks; nothing small.
    let mem = |name: &str| g.memories.iter().find(|m| m.module == "accel" && m.name == name);
    let spad = mem("spad").expect("the scratchpad is kept as a memory");
    assert_eq!((spad.words, spad.width_bits), (cfg.spad_rows() as u64, cfg.array.cols as u64 * 8));
    let acc = mem("acc").expect("the accumulator is kept as a memory");
    assert_eq!((acc.words, acc.width_bits), (cfg.acc_rows() as u64, cfg.array.cols as u64 * 32));
    assert!(g.memories.iter().any(|m| m.module == "dma_load") && g.memories.iter().any(|m| m.module == "dma_store"));
    let mut families = std::collections::BTreeMap::new();
    for m in &g.memories {
        *families.entry((m.module.clone(), area::family_name(&m.name))).or_insert(0) += m.words * m.width_bits;
    }
    assert!(families.values().all(|&bits| bits >= area::KEEP_MIN_BITS), "{families:?}");
    assert_eq!(families.len(), 5, "spad, acc, the two staging buffers and the LOAD unit's id banks: {families:?}");

    // The area's parts add up, and the SRAM parts equal the model's.
    let (s, a) = (&r.synthesized, &r.analytical);
    assert!(close(s.total, r.logic_mm2 + r.sram_mm2));
    assert!(close(s.total, s.pe_array + s.scratchpad + s.accumulator + s.logic + s.vector));
    assert!(close(s.scratchpad, a.scratchpad) && close(s.accumulator, a.accumulator), "{s:?} vs {a:?}");
    assert!(close(r.ratio, s.total / a.total));
    // The PE array: both figures count the same cells (an 8x8 multiplier, a
    // 32-bit adder, the input, weight and partial-sum registers) in a 40 nm
    // (Aladdin) and a 45 nm (NanGate) library, so they agree within 2x.
    let pe = s.pe_array / a.pe_array;
    assert!((0.5..2.0).contains(&pe), "PE array: synthesized {} vs analytical {} mm²", s.pe_array, a.pe_array);
    // The rest: the model charges logic as 0.4 x the PE array, a large
    // array's share (TPU v1's floorplan), ~0.006 mm² here. The RTL's control
    // does not shrink with the array: fetch, three queues of 256-bit
    // instructions in flip-flops, two DMA engines with 12 KiB of staging
    // SRAM and a requantizer per column come to ~0.37 mm² at 4x4, so it is
    // larger; the total stays within 6x because the scratchpad and
    // accumulator, costed alike, are most of the analytical area (at 16x16
    // the two totals agree within 1.25x).
    assert!(s.logic > a.logic, "other logic: synthesized {} vs analytical {} mm²", s.logic, a.logic);
    assert!(r.ratio > 1.0 && r.ratio < 6.0, "synthesized {} vs analytical {} mm²: ratio {}", s.total, a.total, r.ratio);

    // The FPGA: the PEs' multipliers go to DSPs; the kept buffers are counted
    // as block RAM at least at their bits.
    let f = r.fpga.as_ref().expect("xilinx resources");
    assert_eq!(f.family, "xc7");
    assert!(f.luts > 1000 && f.ffs > 1000, "{f:?}");
    assert!(f.dsps >= pes, "{} DSPs for {pes} PEs", f.dsps);
    let bits = (spad.words * spad.width_bits + acc.words * acc.width_bits) as f64;
    assert!(f.bram_counted >= bits / 36864.0, "{f:?}");
    assert!(f.counted_rams.iter().any(|m| (m.module.as_str(), m.name.as_str()) == ("accel", "spad")));
    assert!(f.counted_rams.iter().any(|m| (m.module.as_str(), m.name.as_str()) == ("accel", "acc")));
    assert!(close(f.bram, f.bram_mapped + f.bram_counted));

    // Asking again is answered from the cache, with the same facts.
    let again = area::area(&cfg, &table, &Options { fpga: Some(Fpga::Xilinx), cache: true }, &mut |_| {}).unwrap();
    assert!(again.generic.cached && again.fpga.as_ref().unwrap().cached);
    assert_eq!(again.synthesized, r.synthesized);
    assert_eq!(again.generic.modules, r.generic.modules);
    assert_eq!(again.fpga.as_ref().unwrap().luts, f.luts);
    // Without the FPGA synthesis (the generic one alone, no second thread).
    let generic = area::area(&cfg, &table, &Options { fpga: None, cache: true }, &mut |_| {}).unwrap();
    assert!(generic.fpga.is_none() && generic.generic.cached);
    assert_eq!(generic.synthesized, r.synthesized);
}
