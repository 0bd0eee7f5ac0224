// See qadd_harness.h.
#include "rtl/cpp/qadd_harness.h"

#include <stdexcept>
#include <string>

#include "Vqadd_l1.h"
#include "rtl/src/ffi.rs.h"
#include "verilated.h"

namespace systole_rtl {
namespace {

class Model final : public QaddModel {
 public:
  Model() : ctx_(new VerilatedContext) {
    ctx_->threads(1);
    m_.reset(new Vqadd_l1{ctx_.get(), "qadd"});
    m_->clk = 0;
    m_->ce = 1;
    m_->eval();
  }
  ~Model() override { m_->final(); }

  void run(rust::Slice<const QaddCase> cases, rust::Slice<int32_t> out) override {
    if (out.size() != cases.size()) {
      throw std::invalid_argument("qadd run: " + std::to_string(cases.size()) + " cases but " +
                                  std::to_string(out.size()) + " outputs");
    }
    // Case i is sampled at edge i and its result is on q after it.
    for (size_t i = 0; i < cases.size(); ++i) {
      const QaddCase& c = cases[i];
      m_->a = c.a;
      m_->b = c.b;
      m_->unsigned_in = c.unsigned_in ? 1 : 0;
      m_->ra = c.ra;
      m_->rb = c.rb;
      m_->k = c.k;
      m_->qmin = static_cast<uint32_t>(c.qmin) & 0x1ffu;
      m_->qmax = static_cast<uint32_t>(c.qmax) & 0x1ffu;
      m_->clk = 1;
      m_->eval();
      m_->clk = 0;
      m_->eval();
      const uint32_t q = static_cast<uint32_t>(m_->q) & 0x1ffu;
      out[i] = static_cast<int32_t>(q << 23) >> 23;
    }
  }

 private:
  // Declared first, destroyed last: the model refers to its context.
  std::unique_ptr<VerilatedContext> ctx_;
  std::unique_ptr<Vqadd_l1> m_;
};

}  // namespace

std::unique_ptr<QaddModel> new_qadd_model() { return std::unique_ptr<QaddModel>(new Model()); }

}  // namespace systole_rtl
