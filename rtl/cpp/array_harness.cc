// See array_harness.h.
#include "rtl/cpp/array_harness.h"

#include <stdexcept>
#include <string>

#include "Varray_16x16.h"
#include "Varray_4x4.h"
#include "rtl/src/ffi.rs.h"
#include "verilated.h"

namespace systole_rtl {
namespace {

// Packs n bytes (byte i in bits 8i+7..8i) into a port of at most 64 bits.
template <class T>
void put_bytes(T& port, const uint8_t* b, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
  port = static_cast<T>(v);
}

// ... or into a wide port.
template <std::size_t N>
void put_bytes(VlWide<N>& port, const uint8_t* b, size_t n) {
  for (std::size_t i = 0; i < N; ++i) port.at(i) = 0;
  for (size_t i = 0; i < n; ++i) port.at(i / 4) |= static_cast<uint32_t>(b[i]) << (8 * (i % 4));
}

// Word c (bits 32c+31..32c) of a port of at most 64 bits.
template <class T>
int32_t get_word(const T& port, size_t c) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(port) >> (32 * c)));
}

template <std::size_t N>
int32_t get_word(const VlWide<N>& port, size_t c) {
  return static_cast<int32_t>(port.at(c));
}

template <class V>
class Model final : public ArrayModel {
 public:
  Model(uint32_t rows, uint32_t cols) : ctx_(new VerilatedContext), rows_(rows), cols_(cols) {
    ctx_->threads(1);
    m_.reset(new V{ctx_.get(), "array"});
    m_->clk = 0;
    reset();
  }
  ~Model() override { m_->final(); }

  uint32_t rows() const override { return rows_; }
  uint32_t cols() const override { return cols_; }
  uint32_t latency() const override { return rows_ + cols_ - 1; }

  void reset() override {
    idle();
    m_->rst = 1;
    tick();
    m_->rst = 0;
    m_->eval();
  }

  bool step(const ArrayCycle& cyc, rust::Slice<const uint8_t> x, rust::Slice<const uint8_t> w,
            rust::Slice<int32_t> out) override {
    if (x.size() != rows_ || w.size() != cols_ || out.size() != cols_) {
      throw std::invalid_argument("array step: x must hold " + std::to_string(rows_) + " bytes, w and out " +
                                  std::to_string(cols_));
    }
    return cycle(cyc, x.data(), w.data(), out.data());
  }

  void run(rust::Slice<const ArrayCycle> cycles, rust::Slice<const uint8_t> x, rust::Slice<const uint8_t> w,
           rust::Slice<uint8_t> out_valid, rust::Slice<int32_t> out) override {
    const size_t n = cycles.size();
    if (x.size() != n * rows_ || w.size() != n * cols_ || out_valid.size() != n || out.size() != n * cols_) {
      throw std::invalid_argument("array run: " + std::to_string(n) + " cycles need " + std::to_string(n * rows_) +
                                  " input bytes, " + std::to_string(n * cols_) + " weight bytes, " +
                                  std::to_string(n) + " valid flags and " + std::to_string(n * cols_) + " outputs");
    }
    for (size_t i = 0; i < n; ++i) {
      out_valid[i] = cycle(cycles[i], x.data() + i * rows_, w.data() + i * cols_, out.data() + i * cols_) ? 1 : 0;
    }
  }

 private:
  void idle() {
    m_->rst = 0;
    m_->w_clear = 0;
    m_->w_valid = 0;
    m_->w_row = 0;
    m_->t_valid = 0;  // transposed (column) writes: not driven by this harness
    m_->t_col = 0;
    m_->in_valid = 0;
    m_->in_unsigned = 0;
    m_->swap = 0;
    uint8_t zero[64] = {0};
    put_bytes(m_->w_data, zero, cols_);
    put_bytes(m_->in_data, zero, rows_);
    put_bytes(m_->t_data, zero, rows_);
    m_->eval();
  }

  void tick() {
    m_->clk = 1;
    m_->eval();
    m_->clk = 0;
    m_->eval();
  }

  // One cycle: drive the inputs, read the (registered) outputs, clock edge.
  bool cycle(const ArrayCycle& c, const uint8_t* x, const uint8_t* w, int32_t* out) {
    m_->w_clear = c.w_clear;
    m_->w_valid = c.w_valid;
    m_->w_row = static_cast<uint16_t>(c.w_row);
    m_->in_valid = c.in_valid;
    m_->in_unsigned = c.in_unsigned;
    m_->swap = c.swap;
    put_bytes(m_->w_data, w, cols_);
    put_bytes(m_->in_data, x, rows_);
    m_->eval();
    const bool valid = m_->out_valid;
    for (uint32_t k = 0; k < cols_; ++k) out[k] = get_word(m_->out_data, k);
    tick();
    return valid;
  }

  // Declared first, destroyed last: the model refers to its context.
  std::unique_ptr<VerilatedContext> ctx_;
  std::unique_ptr<V> m_;
  uint32_t rows_;
  uint32_t cols_;
};

}  // namespace

std::unique_ptr<ArrayModel> new_array_model(uint32_t rows, uint32_t cols) {
  if (rows == 4 && cols == 4) return std::unique_ptr<ArrayModel>(new Model<Varray_4x4>(4, 4));
  if (rows == 16 && cols == 16) return std::unique_ptr<ArrayModel>(new Model<Varray_16x16>(16, 16));
  throw std::invalid_argument("array: no model of " + std::to_string(rows) + "x" + std::to_string(cols) +
                              " (4x4 and 16x16 are built)");
}

}  // namespace systole_rtl
