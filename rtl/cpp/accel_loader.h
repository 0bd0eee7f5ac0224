// Loads one configuration's verilated accelerator (a shared library built
// by `rtl::verilate`, interface accel_abi.h) and exposes it to Rust through
// the cxx bridge (src/ffi.rs). One library per configuration lets any
// HwConfig be simulated without rebuilding the crate.
#pragma once
#include <memory>

#include "rust/cxx.h"
#include "rtl/cpp/accel_abi.h"

namespace systole_rtl {

class AccelSim {
 public:
  AccelSim(void* lib, void* sim, rust::Vec<uint32_t> table, sys_delete_fn del, sys_waves_open_fn waves_open,
           sys_waves_at_fn waves_at, sys_cycle_fn cycle);
  ~AccelSim();
  AccelSim(const AccelSim&) = delete;
  AccelSim& operator=(const AccelSim&) = delete;

  // One clock cycle: `in` has SYS_IN_WORDS words, `out` SYS_OUT_WORDS.
  void cycle(rust::Slice<const uint32_t> in, rust::Slice<uint32_t> out);
  // Starts a waveform (VCD or FST, as the library was built) with a time
  // step of `resolution` (e.g. "1ps") and `half_period` steps per half
  // clock; false if the library was built without tracing.
  bool waves_open(rust::Str path, uint64_t half_period, rust::Str resolution);
  // The next cycle is dumped as run cycle `cycle` and each one after it as
  // the next; negative: cycles are not dumped.
  void waves_at(int64_t cycle);
  // The library's compiled-in copy of the interface table (SYS_ABI_TABLE).
  rust::Vec<uint32_t> abi_table() const;

 private:
  void* lib_;
  void* sim_;
  rust::Vec<uint32_t> table_;
  sys_delete_fn del_;
  sys_waves_open_fn waves_open_;
  sys_waves_at_fn waves_at_;
  sys_cycle_fn cycle_;
};

// dlopen()s the library; throws (an Err in Rust) saying what failed.
std::unique_ptr<AccelSim> accel_open(rust::Str path);

}  // namespace systole_rtl
