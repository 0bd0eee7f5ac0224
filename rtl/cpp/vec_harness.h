// C++ harness of the verilated vector lane (`verilog/vec_lane.sv`), bound to
// Rust by cxx (rtl/src/ffi.rs). One VecLaneModel owns one VerilatedContext
// (one thread) and is used from one thread.
#pragma once

#include <cstdint>
#include <memory>

#include "rust/cxx.h"

namespace systole_rtl {

struct VecCase;

class VecLaneModel {
 public:
  virtual ~VecLaneModel() = default;
  virtual void run(rust::Slice<const VecCase> cases, rust::Slice<uint32_t> out, rust::Slice<uint32_t> cycles) = 0;
};

std::unique_ptr<VecLaneModel> new_vec_lane_model();

}  // namespace systole_rtl
