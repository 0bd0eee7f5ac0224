//! Builds the verilated RTL when the `verilator` feature is on; does nothing
//! otherwise (the crate then holds no RTL, see `src/lib.rs`).
//!
//! With the feature:
//! 1. every configuration in `MODELS` is verilated (`verilator --cc`) into
//!    its own folder under `OUT_DIR`, cleared first (Verilator's file names
//!    carry hashes, so stale files would otherwise be compiled too), with its
//!    own `--prefix` so that several configurations link into one binary;
//! 2. the generated C++, Verilator's runtime (`verilated.cpp`,
//!    `verilated_threads.cpp`), the C++ harness (`cpp/`) and the cxx bridge
//!    (`src/ffi.rs`) are compiled by `cc` (through `cxx-build`, in parallel,
//!    one translation unit per model) at `-Os`,
//!    whatever the cargo profile (a debug build would otherwise compile the
//!    model at -O0 and simulate ~9x slower; -Os was the fastest level here,
//!    docs/DESIGN.md §9), with `-pthread`, and linked with `atomic`.
//!
//! A missing `verilator` is a build error that says how to install it,
//! never a silent skip (docs/DESIGN.md §1, §9).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "verilator")]
    verilated::build();
}

#[cfg(feature = "verilator")]
mod verilated {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Instant;

    /// One verilated configuration: the `--prefix` (its C++ class), the top
    /// module, its source and parameter overrides.
    struct Model {
        prefix: &'static str,
        top: &'static str,
        source: &'static str,
        params: &'static [(&'static str, &'static str)],
    }

    /// The requantizer in each of its pipeline depths (`LATENCY` 0, 1, 2),
    /// the quantized add, and the systolic array at 4x4 and 16x16.
    const MODELS: &[Model] = &[
        Model { prefix: "Vrequant_l0", top: "requant", source: "verilog/requant.sv", params: &[("LATENCY", "0")] },
        Model { prefix: "Vrequant_l1", top: "requant", source: "verilog/requant.sv", params: &[("LATENCY", "1")] },
        Model { prefix: "Vrequant_l2", top: "requant", source: "verilog/requant.sv", params: &[("LATENCY", "2")] },
        // The quantized add as compute.sv instantiates it.
        Model { prefix: "Vqadd_l1", top: "qadd", source: "verilog/qadd.sv", params: &[("LATENCY", "1")] },
        // The systolic array at the two sizes its tests use.
        Model {
            prefix: "Varray_4x4",
            top: "array",
            source: "verilog/array.sv",
            params: &[("ROWS", "4"), ("COLS", "4")],
        },
        Model {
            prefix: "Varray_16x16",
            top: "array",
            source: "verilog/array.sv",
            params: &[("ROWS", "16"), ("COLS", "16")],
        },
        // The vector unit's lane (binary32 arithmetic, rtl/tests/vector.rs).
        Model { prefix: "Vvec_lane", top: "vec_lane", source: "verilog/vec_lane.sv", params: &[] },
    ];

    const INSTALL: &str =
        "install it with `apt-get install -y verilator` (Verilator 5.006 is what this project is tested \
                           with), or build without the `verilator` feature to use the Rust model only";

    /// `SYS_REQUANT_ZP_W` of the generated header: the requantizer's default
    /// `QW`, handed to the harness (C++) and the crate (Rust).
    fn requant_qw(header: &Path) -> u32 {
        let text = std::fs::read_to_string(header).unwrap_or_else(|e| panic!("reading {}: {e}", header.display()));
        text.lines()
            .find_map(|l| l.strip_prefix("`define SYS_REQUANT_ZP_W "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{} defines no SYS_REQUANT_ZP_W", header.display()))
    }

    fn verilator_root() -> PathBuf {
        let out = match Command::new("verilator").arg("--getenv").arg("VERILATOR_ROOT").output() {
            Ok(out) if out.status.success() => out,
            Ok(out) => panic!(
                "\n\n`verilator --getenv VERILATOR_ROOT` failed ({}): {}\nThe `verilator` feature needs a working Verilator: {INSTALL}.\n\n",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!(
                "\n\nThe `verilator` feature of the `rtl` crate needs Verilator, but `verilator` could not be run ({e}): \
                 {INSTALL}.\n\n"
            ),
        };
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }

    fn verilate(model: &Model, manifest: &Path, include: &Path, out_root: &Path) -> PathBuf {
        let mdir = out_root.join(model.prefix);
        if mdir.exists() {
            std::fs::remove_dir_all(&mdir).unwrap_or_else(|e| panic!("clearing {}: {e}", mdir.display()));
        }
        std::fs::create_dir_all(&mdir).unwrap_or_else(|e| panic!("creating {}: {e}", mdir.display()));
        let mut cmd = Command::new("verilator");
        cmd.arg("--cc")
            .arg("--prefix")
            .arg(model.prefix)
            .arg("--top-module")
            .arg(model.top)
            .arg("--Mdir")
            .arg(&mdir)
            .arg(format!("-I{}", include.display()))
            // Submodules come from their own files.
            .arg("-y")
            .arg(manifest.join("verilog"));
        for (name, value) in model.params {
            cmd.arg(format!("-G{name}={value}"));
        }
        cmd.arg(manifest.join(model.source));
        let out = cmd.output().unwrap_or_else(|e| panic!("\n\nrunning verilator ({e}): {INSTALL}.\n\n"));
        if !out.status.success() {
            panic!(
                "verilator failed on {} ({}):\n{}{}",
                model.source,
                model.prefix,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        mdir
    }

    /// The Verilog files a verilated model was made from: the `.sv` and `.vh`
    /// prerequisites of Verilator's make-style dependency file.
    fn verilog_read(depfile: &Path) -> Vec<PathBuf> {
        let text = std::fs::read_to_string(depfile).unwrap_or_else(|e| panic!("reading {}: {e}", depfile.display()));
        let (_, prerequisites) =
            text.split_once(" : ").unwrap_or_else(|| panic!("{}: no ` : ` separator", depfile.display()));
        let files: Vec<PathBuf> = prerequisites
            .split_whitespace()
            .filter(|f| f.ends_with(".sv") || f.ends_with(".vh") || f.ends_with(".v"))
            .map(PathBuf::from)
            .collect();
        assert!(!files.is_empty(), "{} names no Verilog source", depfile.display());
        files
    }

    fn cpp_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "cpp"))
            .collect();
        files.sort();
        files
    }

    pub fn build() {
        let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
        let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
        let include = manifest.join("include");
        // The Verilog the models read is named after verilating (from
        // Verilator's dependency files), so an edit of the accelerator's own
        // files (built at run time by `rtl::verilate`) re-verilates nothing here.
        for dir in ["include", "cpp"] {
            println!("cargo:rerun-if-changed={}", manifest.join(dir).display());
        }
        println!("cargo:rerun-if-changed={}", manifest.join("src/ffi.rs").display());
        println!("cargo:rerun-if-env-changed=VERILATOR_ROOT");

        let root = verilator_root();
        let t0 = Instant::now();
        let out_root = out_dir.join("verilated");
        let mdirs: Vec<PathBuf> = MODELS.iter().map(|m| verilate(m, &manifest, &include, &out_root)).collect();
        for (model, mdir) in MODELS.iter().zip(&mdirs) {
            for source in verilog_read(&mdir.join(format!("{}__ver.d", model.prefix))) {
                println!("cargo:rerun-if-changed={}", source.display());
            }
        }
        let verilate_s = t0.elapsed().as_secs_f64();

        let qw = requant_qw(&include.join("systole_isa.vh"));
        println!("cargo:rustc-env=SYSTOLE_REQUANT_QW={qw}");

        let t1 = Instant::now();
        let mut build = cxx_build::bridge("src/ffi.rs");
        build
            .cpp(true)
            .std("c++17")
            .opt_level_str("s")
            .debug(false)
            .warnings(false)
            .include(&manifest)
            .include(root.join("include"))
            .include(root.join("include/vltstd"))
            .define("VM_COVERAGE", "0")
            .define("VM_SC", "0")
            .define("VM_TRACE", "0")
            .define("VM_TRACE_FST", "0")
            .define("VM_TRACE_VCD", "0")
            .define("SYSTOLE_REQUANT_QW", qw.to_string().as_str())
            .flag("-pthread")
            .flag_if_supported("-faligned-new")
            .flag_if_supported("-Wno-bool-operation")
            .flag_if_supported("-Wno-sign-compare")
            .flag_if_supported("-Wno-uninitialized")
            .flag_if_supported("-Wno-unused-but-set-variable")
            .flag_if_supported("-Wno-unused-parameter")
            .flag_if_supported("-Wno-unused-variable")
            .flag_if_supported("-Wno-shadow");
        // One translation unit per model (a "unity" file including its
        // generated .cpp files): each generated file alone spends ~1.8 s
        // parsing Verilator's headers, a model's seven together ~2 s.
        for (model, mdir) in MODELS.iter().zip(&mdirs) {
            build.include(mdir);
            let unity = out_root.join(format!("{}__all.cpp", model.prefix));
            let text: String = cpp_files(mdir).iter().map(|f| format!("#include \"{}\"\n", f.display())).collect();
            std::fs::write(&unity, text).unwrap_or_else(|e| panic!("writing {}: {e}", unity.display()));
            build.file(unity);
        }
        build.file(root.join("include/verilated.cpp"));
        build.file(root.join("include/verilated_threads.cpp"));
        build.file(manifest.join("cpp/requant_harness.cc"));
        build.file(manifest.join("cpp/qadd_harness.cc"));
        build.file(manifest.join("cpp/array_harness.cc"));
        build.file(manifest.join("cpp/vec_harness.cc"));
        // The loader of whole-accelerator libraries (built per configuration
        // at run time by `rtl::verilate`, so no accelerator is compiled here).
        build.file(manifest.join("cpp/accel_loader.cc"));
        build.compile("systole_rtl");
        println!("cargo:rustc-link-lib=atomic");
        println!("cargo:rustc-link-lib=pthread");
        println!("cargo:rustc-link-lib=dl");
        // Build times, for the tests to print (verilating, compiling the C++).
        println!(
            "cargo:rustc-env=SYSTOLE_RTL_BUILD_TIMES=verilated {} models in {verilate_s:.1} s, compiled the C++ in {:.1} s",
            MODELS.len(),
            t1.elapsed().as_secs_f64()
        );
    }
}
