//! The per-cycle interface between a verilated `accel` library (built per
//! configuration by `rtl::verilate`) and the harness that drives it — defined
//! once, here.
//!
//! The constants below are what `rtl::device` uses, and [`c_header()`]
//! generates `cpp/accel_abi.h` from the same table for the C++ side (a test
//! fails when the committed header is stale: `UPDATE_EXPECT=1 cargo test -p
//! rtl --lib abi` rewrites it). Every library also exports its compiled-in
//! copy of the table (`sys_abi_table`), and the loader refuses a library
//! whose table differs from [`table()`] ([`check_table`]), so a stale cached
//! library can never be driven with the wrong word layout.
//!
//! One call moves one clock cycle: the harness sets every input for the
//! cycle, the model settles, the outputs are sampled, then the rising edge
//! commits. Words are 32 bits; the layout is fixed whatever the
//! configuration (data buses at their 64-byte maximum).

/// One named constant of the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbiConst {
    /// The name without the `SYS_` prefix the C header gives it.
    pub name: &'static str,
    pub value: u32,
    /// What the constant is (a C comment in the header).
    pub doc: &'static str,
}

/// A group of constants (a C `enum` in the header).
#[derive(Clone, Copy, Debug)]
pub struct AbiGroup {
    pub title: &'static str,
    pub consts: &'static [AbiConst],
}

macro_rules! abi_groups {
    ($( $title:literal : $ty:ty { $( $(#[doc = $doc:literal])? $name:ident = $value:expr ),* $(,)? } )*) => {
        $( $( $(#[doc = $doc])? pub const $name: $ty = $value; )* )*

        /// Every constant of the interface, by group, in header order.
        pub const GROUPS: &[AbiGroup] = &[
            $( AbiGroup {
                title: $title,
                consts: &[ $( AbiConst {
                    name: stringify!($name),
                    value: ($value) as u32,
                    doc: concat!("" $(, $doc)?),
                } ),* ],
            } ),*
        ];
    };
}

/// The interface's version; bumped with any change of the table or the
/// exported functions.
pub const VERSION: u32 = 3;

abi_groups! {
    "Input words": usize {
        IN_FLAGS = 0,
        IN_S_AWADDR = 1,
        IN_S_WDATA = 2,
        IN_S_ARADDR = 3,
        /// 16 words: the read beat, little-endian bytes
        IN_RDATA = 4,
        /// the number of input words
        IN_WORDS = 20,
    }
    "IN_FLAGS bits": u32 {
        I_RST_N = 1 << 0,
        /// arready and awready: a DRAM slot is free
        I_M_READY = 1 << 1,
        I_RVALID = 1 << 2,
        I_RLAST = 1 << 3,
        /// 2 bits
        I_RID_SHIFT = 4,
        I_WREADY = 1 << 6,
        I_S_AWVALID = 1 << 7,
        I_S_WVALID = 1 << 8,
        I_S_BREADY = 1 << 9,
        I_S_ARVALID = 1 << 10,
        I_S_RREADY = 1 << 11,
    }
    "Output words": usize {
        OUT_FLAGS = 0,
        OUT_ARADDR = 1,
        OUT_ARLEN = 2,
        OUT_AWADDR = 3,
        OUT_AWLEN = 4,
        OUT_S_RDATA = 5,
        /// 16 words
        OUT_WDATA = 6,
        /// 2 words
        OUT_WSTRB = 22,
        /// bits: load, compute, store, finish
        OUT_TR_START = 24,
        /// 4 words
        OUT_TR_START_PC = 25,
        /// bits: load, store, ldw, matmul, ppu, compute sync
        OUT_TR_FIN = 29,
        /// 6 words
        OUT_TR_FIN_PC = 30,
        /// the number of output words
        OUT_WORDS = 36,
    }
    "OUT_FLAGS bits": u32 {
        O_ARVALID = 1 << 0,
        O_AWVALID = 1 << 1,
        /// 2 bits
        O_ARID_SHIFT = 2,
        O_WVALID = 1 << 4,
        O_WLAST = 1 << 5,
        O_S_AWREADY = 1 << 6,
        O_S_WREADY = 1 << 7,
        O_S_BVALID = 1 << 8,
        /// 2 bits
        O_S_BRESP_SHIFT = 9,
        O_S_ARREADY = 1 << 11,
        O_S_RVALID = 1 << 12,
        /// 2 bits
        O_S_RRESP_SHIFT = 13,
        O_RUNNING = 1 << 15,
        /// 2 bits: LOAD, STORE staging overflow
        O_OVERFLOW_SHIFT = 16,
    }
}

/// Every constant in table order: what `sys_abi_table` returns.
pub fn table() -> impl Iterator<Item = &'static AbiConst> {
    GROUPS.iter().flat_map(|g| g.consts)
}

/// Checks a library's own copy of the table against this one; the error
/// names the first constant that differs.
pub fn check_table(library: &[u32]) -> Result<(), String> {
    let ours: Vec<&AbiConst> = table().collect();
    for (c, &theirs) in ours.iter().zip(library) {
        if c.value != theirs {
            return Err(format!(
                "the library's SYS_{} is {theirs}, the harness's {}: it was built from another accel_abi.h (rebuild it)",
                c.name, c.value
            ));
        }
    }
    if library.len() != ours.len() {
        return Err(format!(
            "the library's interface table has {} constants, the harness's {}: it was built from another accel_abi.h (rebuild it)",
            library.len(),
            ours.len()
        ));
    }
    Ok(())
}

/// The committed header, relative to this crate.
pub const HEADER_PATH: &str = "cpp/accel_abi.h";

/// The text of `cpp/accel_abi.h`.
pub fn c_header() -> String {
    let mut h = String::from(
        "// The per-cycle interface between a verilated `accel` (one configuration,\n\
         // built at run time into its own shared library by `rtl::verilate`) and the\n\
         // harness that drives it (`accel_loader.cc`, Rust's `rtl::device`).\n\
         // GENERATED by `rtl::abi::c_header()` from the table in rtl/src/abi.rs: do not\n\
         // edit; run `UPDATE_EXPECT=1 cargo test -p rtl --lib abi` and commit it.\n\
         //\n\
         // One call moves one clock cycle: the harness sets every input for the\n\
         // cycle, the model settles, the outputs are sampled (what the inputs and the\n\
         // state at the start of the cycle make them), then the rising edge commits.\n\
         // Words are 32 bits; the layout is fixed whatever the configuration (data\n\
         // buses at their 64-byte maximum), so the loader never depends on it.\n\
         #pragma once\n\
         #include <stdint.h>\n\n",
    );
    h.push_str(&format!("#define SYS_ABI_VERSION {VERSION}u\n"));
    for g in GROUPS {
        h.push_str(&format!("\n// {}.\nenum {{\n", g.title));
        for c in g.consts {
            let value = if g.title.ends_with("bits") && !c.name.ends_with("_SHIFT") {
                format!("1u << {}", c.value.trailing_zeros())
            } else {
                c.value.to_string()
            };
            let doc = if c.doc.is_empty() { String::new() } else { format!("  //{}", c.doc) };
            h.push_str(&format!("  SYS_{} = {value},{doc}\n", c.name));
        }
        h.push_str("};\n");
    }
    let names: Vec<String> = table().map(|c| format!("SYS_{}", c.name)).collect();
    h.push_str(&format!(
        "\n// Every constant above in order: what `sys_abi_table` returns, so the\n\
         // loader can check a library against the harness's table.\n\
         #define SYS_ABI_TABLE {{ {} }}\n\
         #define SYS_ABI_TABLE_LEN {}u\n",
        names.join(", "),
        names.len()
    ));
    h.push_str(
        "\n// The functions a configuration's library exports (C linkage).\n\
         extern \"C\" {\n\
         typedef uint32_t (*sys_abi_version_fn)(void);\n\
         typedef const uint32_t* (*sys_abi_table_fn)(uint32_t* len);\n\
         typedef void* (*sys_new_fn)(void);\n\
         typedef void (*sys_delete_fn)(void*);\n\
         typedef int (*sys_waves_open_fn)(void*, const char* path, uint64_t half_period, const char* resolution);\n\
         typedef void (*sys_waves_at_fn)(void*, int64_t cycle);\n\
         typedef void (*sys_cycle_fn)(void*, const uint32_t* in, uint32_t* out);\n\
         }\n",
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_header_is_fresh() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(HEADER_PATH);
        let want = c_header();
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::write(&path, want).expect("write the header");
            } else {
                panic!("rtl/{HEADER_PATH} is stale: run `UPDATE_EXPECT=1 cargo test -p rtl --lib abi` and commit it");
            }
        }
    }

    // The multi-word fields fit before the next one.
    const _: () = assert!(IN_RDATA + 16 <= IN_WORDS && OUT_WDATA + 16 <= OUT_WSTRB && OUT_WSTRB + 2 <= OUT_TR_START);
    const _: () = assert!(OUT_TR_START_PC + 4 <= OUT_TR_FIN && OUT_TR_FIN_PC + 6 <= OUT_WORDS);

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = table().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), table().count());
    }

    #[test]
    fn a_different_table_is_named() {
        let mut lib: Vec<u32> = table().map(|c| c.value).collect();
        assert_eq!(check_table(&lib), Ok(()));
        let i = table().position(|c| c.name == "I_RLAST").expect("present");
        lib[i] = 1 << 9;
        let e = check_table(&lib).expect_err("differs");
        assert!(e.contains("SYS_I_RLAST is 512, the harness's 8"), "{e}");
        lib[i] = I_RLAST;
        lib.pop();
        assert!(check_table(&lib).expect_err("shorter").contains("constants"));
    }
}
