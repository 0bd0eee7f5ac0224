// C++ harness of the verilated quantized add (`verilog/qadd.sv`, LATENCY 1,
// as compute.sv uses it), bound to Rust by cxx (rtl/src/ffi.rs). One
// QaddModel owns one VerilatedContext (one thread) and is used from one thread.
#pragma once

#include <cstdint>
#include <memory>

#include "rust/cxx.h"

namespace systole_rtl {

struct QaddCase;

class QaddModel {
 public:
  virtual ~QaddModel() = default;
  virtual void run(rust::Slice<const QaddCase> cases, rust::Slice<int32_t> out) = 0;
};

std::unique_ptr<QaddModel> new_qadd_model();

}  // namespace systole_rtl
