// See requant_harness.h.
#include "rtl/cpp/requant_harness.h"

#include <stdexcept>
#include <string>

#include "Vrequant_l0.h"
#include "Vrequant_l1.h"
#include "Vrequant_l2.h"
#include "rtl/src/ffi.rs.h"
#include "verilated.h"

#ifndef SYSTOLE_REQUANT_QW
#error "build.rs defines SYSTOLE_REQUANT_QW (the QW the models were verilated with)"
#endif

namespace systole_rtl {
namespace {

constexpr uint32_t kQw = SYSTOLE_REQUANT_QW;
constexpr uint32_t kMask = (1u << kQw) - 1u;

template <class V>
class Model final : public RequantModel {
 public:
  explicit Model(uint32_t latency) : ctx_(new VerilatedContext), latency_(latency) {
    ctx_->threads(1);
    m_.reset(new V{ctx_.get(), "requant"});
    m_->clk = 0;
    m_->ce = 1;
    set_inputs(RequantCase{});
    m_->eval();
  }
  ~Model() override { m_->final(); }

  uint32_t latency() const override { return latency_; }

  void set_inputs(const RequantCase& c) override {
    m_->acc = static_cast<uint32_t>(c.acc);
    m_->scale = c.scale;
    m_->zp = static_cast<uint32_t>(c.zp) & kMask;
    m_->qmin = static_cast<uint32_t>(c.qmin) & kMask;
    m_->qmax = static_cast<uint32_t>(c.qmax) & kMask;
  }

  void set_ce(bool ce) override { m_->ce = ce ? 1 : 0; }

  void eval() override { m_->eval(); }

  void tick() override {
    m_->clk = 1;
    m_->eval();
    m_->clk = 0;
    m_->eval();
  }

  int32_t output() const override {
    const uint32_t q = static_cast<uint32_t>(m_->q) & kMask;
    return static_cast<int32_t>(q << (32 - kQw)) >> (32 - kQw);
  }

  void run(rust::Slice<const RequantCase> cases, rust::Slice<int32_t> out) override {
    const size_t n = cases.size();
    if (out.size() != n) {
      throw std::invalid_argument("requant run: " + std::to_string(n) + " cases but " + std::to_string(out.size()) +
                                  " outputs");
    }
    m_->ce = 1;
    if (latency_ == 0) {
      for (size_t i = 0; i < n; ++i) {
        set_inputs(cases[i]);
        m_->eval();
        out[i] = output();
      }
      return;
    }
    // Case i is sampled at edge i; its result is on q after edge i + latency - 1.
    const size_t lag = latency_ - 1;
    for (size_t i = 0; i < n + lag; ++i) {
      if (i < n) set_inputs(cases[i]);
      tick();
      if (i >= lag) out[i - lag] = output();
    }
  }

 private:
  // Declared first, destroyed last: the model refers to its context.
  std::unique_ptr<VerilatedContext> ctx_;
  std::unique_ptr<V> m_;
  uint32_t latency_;
};

}  // namespace

std::unique_ptr<RequantModel> new_requant_model(uint32_t latency) {
  switch (latency) {
    case 0:
      return std::unique_ptr<RequantModel>(new Model<Vrequant_l0>(0));
    case 1:
      return std::unique_ptr<RequantModel>(new Model<Vrequant_l1>(1));
    case 2:
      return std::unique_ptr<RequantModel>(new Model<Vrequant_l2>(2));
    default:
      throw std::invalid_argument("requant: no model of LATENCY " + std::to_string(latency) + " (0, 1, 2 are built)");
  }
}

uint32_t requant_qw() { return kQw; }

}  // namespace systole_rtl
