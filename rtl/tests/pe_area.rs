//! `rtl::area::pe_area`: the int8, int4 and 2:4-sparse PEs from yosys (the
//! `array` module alone, 4x4, two syntheses of seconds each, uncached), and
//! the cost of the 2:4 PE's select, positions and input lanes against the
//! int8 one. Needs yosys. In the RTL tier:
//! `cargo test -p rtl --features verilator --release --test pe_area`.

use isa::HwConfig;
use rtl::area::{self, Options, PE_SHAPE};
use sim::energy::EnergyTable;

#[test]
fn sparse_and_int4_pes_against_the_int8_one() {
    std::env::set_var("SYSTOLE_RTL_CACHE", concat!(env!("CARGO_TARGET_TMPDIR"), "/systole-pe-area-cache"));
    let text = include_str!("../../examples/hw/sparse24.toml");
    let cfg = HwConfig::from_toml(text).expect("sparse24.toml is valid");
    let table = EnergyTable::default();
    let opts = Options { fpga: None, cache: false };
    let mut passes = 0;
    let r = area::pe_area(&cfg, &table, &opts, &mut |_| passes += 1).unwrap_or_else(|e| panic!("{e}"));
    println!("{r:#?}");
    assert!(passes > 10, "progress heard {passes} yosys passes");
    assert_eq!((r.rows, r.cols), PE_SHAPE);
    let names: Vec<&str> = r.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["int8", "int4", "2:4 int8"]);
    let (int8, int4, sparse) = (&r.variants[0], &r.variants[1], &r.variants[2]);
    assert!(!int8.cached && !sparse.cached && int8.seconds > 0.0);
    // The configuration's variants: int8 and 2:4, not int4.
    assert!(int8.in_config && !int4.in_config && sparse.in_config);
    // An int8 x 9-bit multiplier, a 32-bit adder and ~70 flip-flops per PE:
    // hundreds to a few thousand NAND2 equivalents.
    assert!((500.0..5000.0).contains(&int8.per_pe_nand2), "int8 PE: {} NAND2 eq.", int8.per_pe_nand2);
    assert!(int8.per_pe_flip_flops > 60.0, "active + shadow weights, partial sum, x: {}", int8.per_pe_flip_flops);
    assert_eq!(int8.overhead, 0.0);
    // The int4 PE is the int8 one (int4 weights are unpacked at the edge).
    assert_eq!((int4.cells, int4.per_pe_um2, int4.overhead), (int8.cells, int8.per_pe_um2, 0.0));
    // 2:4: three more 9-bit input lanes per row and two 2-bit positions per
    // PE (~30 more flip-flops), the 4-to-1 select: a fifth to a third more,
    // never free and never a second multiplier's worth.
    assert!(
        sparse.per_pe_flip_flops - int8.per_pe_flip_flops > 20.0,
        "{} vs {}",
        sparse.per_pe_flip_flops,
        int8.per_pe_flip_flops
    );
    assert!((0.05..0.5).contains(&sparse.overhead), "2:4 PE overhead {:.3}", sparse.overhead);
    let um2 = |ge: f64| ge * r.gate_area_um2;
    assert!((sparse.per_pe_um2 - um2(sparse.per_pe_nand2)).abs() < 1e-6 * sparse.per_pe_um2);
    assert!(r.analytical_pe_um2 > 0.0);
}
