// See vec_harness.h.
#include "rtl/cpp/vec_harness.h"

#include <stdexcept>
#include <string>

#include "Vvec_lane.h"
#include "rtl/src/ffi.rs.h"
#include "verilated.h"

namespace systole_rtl {
namespace {

// More cycles than any op takes (erf: 20 steps): a lane that never answers
// is an error, not a hang.
constexpr uint32_t kMaxCycles = 64;

class Model final : public VecLaneModel {
 public:
  Model() : ctx_(new VerilatedContext) {
    ctx_->threads(1);
    m_.reset(new Vvec_lane{ctx_.get(), "vec_lane"});
    m_->clk = 0;
    m_->start = 0;
    m_->rst = 1;
    tick();
    m_->rst = 0;
  }
  ~Model() override { m_->final(); }

  void run(rust::Slice<const VecCase> cases, rust::Slice<uint32_t> out, rust::Slice<uint32_t> cycles) override {
    if (out.size() != cases.size() || cycles.size() != cases.size()) {
      throw std::invalid_argument("vec_lane run: " + std::to_string(cases.size()) + " cases but " +
                                  std::to_string(out.size()) + " outputs and " + std::to_string(cycles.size()) +
                                  " cycle counts");
    }
    // Case i starts at an edge with start = 1; its cycle count is the number
    // of edges after that one until done is high.
    for (size_t i = 0; i < cases.size(); ++i) {
      const VecCase& c = cases[i];
      m_->op = c.op;
      m_->a = c.a;
      m_->b = c.b;
      m_->c = c.c;
      m_->qmin = c.qmin;
      m_->qmax = c.qmax;
      m_->start = 1;
      tick();
      m_->start = 0;
      uint32_t n = 0;
      while (!m_->done) {
        if (++n > kMaxCycles) throw std::runtime_error("vec_lane: op " + std::to_string(c.op) + " never finished");
        tick();
      }
      out[i] = m_->y;
      cycles[i] = n;
    }
  }

 private:
  void tick() {
    m_->clk = 1;
    m_->eval();
    m_->clk = 0;
    m_->eval();
  }
  // Declared first, destroyed last: the model refers to its context.
  std::unique_ptr<VerilatedContext> ctx_;
  std::unique_ptr<Vvec_lane> m_;
};

}  // namespace

std::unique_ptr<VecLaneModel> new_vec_lane_model() { return std::unique_ptr<VecLaneModel>(new Model()); }

}  // namespace systole_rtl
