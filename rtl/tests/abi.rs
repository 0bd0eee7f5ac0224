//! The harness interface is defined once (`rtl::abi`): the library verilated
//! for a configuration carries its own compiled-in copy of the table, and it
//! must equal the harness's.

use isa::HwConfig;
use rtl::{abi, RtlDevice};

#[test]
fn loaded_library_has_the_harness_table() {
    let cfg = HwConfig::tiny_4x4();
    let dev = RtlDevice::new(&cfg).expect("build and load the 4x4 accelerator");
    let ours: Vec<u32> = abi::table().map(|c| c.value).collect();
    assert_eq!(dev.abi_table(), ours);
    assert_eq!(abi::check_table(&dev.abi_table()), Ok(()));
}
