// C++ harness of the verilated requantizer, bound to Rust by cxx
// (rtl/src/ffi.rs). One RequantModel owns one VerilatedContext (one thread)
// and one verilated `requant` of a given LATENCY; it is used from one thread.
#pragma once

#include <cstdint>
#include <memory>

#include "rust/cxx.h"

namespace systole_rtl {

struct RequantCase;

class RequantModel {
 public:
  virtual ~RequantModel() = default;
  virtual uint32_t latency() const = 0;
  virtual void set_inputs(const RequantCase& c) = 0;
  virtual void set_ce(bool ce) = 0;
  virtual void eval() = 0;
  virtual void tick() = 0;
  virtual int32_t output() const = 0;
  virtual void run(rust::Slice<const RequantCase> cases, rust::Slice<int32_t> out) = 0;
};

std::unique_ptr<RequantModel> new_requant_model(uint32_t latency);
uint32_t requant_qw();

}  // namespace systole_rtl
