// C++ harness of the verilated systolic array (rtl/verilog/array.sv), bound
// to Rust by cxx (rtl/src/ffi.rs). One ArrayModel owns one VerilatedContext
// and one verilated `array` of a given ROWS x COLS; it is used from one
// thread.
#pragma once

#include <cstdint>
#include <memory>

#include "rust/cxx.h"

namespace systole_rtl {

struct ArrayCycle;

class ArrayModel {
 public:
  virtual ~ArrayModel() = default;
  virtual uint32_t rows() const = 0;
  virtual uint32_t cols() const = 0;
  virtual uint32_t latency() const = 0;
  virtual void reset() = 0;
  virtual bool step(const ArrayCycle& cyc, rust::Slice<const uint8_t> x, rust::Slice<const uint8_t> w,
                    rust::Slice<int32_t> out) = 0;
  virtual void run(rust::Slice<const ArrayCycle> cycles, rust::Slice<const uint8_t> x,
                   rust::Slice<const uint8_t> w, rust::Slice<uint8_t> out_valid, rust::Slice<int32_t> out) = 0;
};

std::unique_ptr<ArrayModel> new_array_model(uint32_t rows, uint32_t cols);

}  // namespace systole_rtl
