// One configuration's verilated `accel` behind the C interface of
// accel_abi.h. Compiled by `rtl::verilate` together with the generated
// C++ into a shared library per configuration (and per waveform format:
// SYS_TRACE 0 none, 1 VCD, 2 FST).
#include "accel_abi.h"

#include <memory>

#include "Vaccel.h"
#include "verilated.h"
#if SYS_TRACE == 1
#include "verilated_vcd_c.h"
typedef VerilatedVcdC Waves;
#elif SYS_TRACE == 2
#include "verilated_fst_c.h"
typedef VerilatedFstC Waves;
#endif

namespace {

struct Sim {
  std::unique_ptr<VerilatedContext> ctx;
  std::unique_ptr<Vaccel> top;
#if SYS_TRACE
  std::unique_ptr<Waves> waves;
#endif
  // Waveform time of one half clock period, in the file's resolution.
  uint64_t half_period = 1;
  // The run cycle the next sys_cycle dumps as; negative: it dumps nothing.
  int64_t dump_cycle = -1;

  Sim() : ctx(new VerilatedContext) {
#if SYS_TRACE
    ctx->traceEverOn(true);
#endif
    top.reset(new Vaccel(ctx.get(), "accel"));
    top->clk = 0;
    top->rst_n = 0;
    top->eval();
  }
  ~Sim() {
#if SYS_TRACE
    if (waves) waves->close();
#endif
    top->final();
  }

  // `phase` 0: the clock's low half of the cycle, 1: its high half.
  void dump(int phase) {
#if SYS_TRACE
    if (waves && dump_cycle >= 0) waves->dump((2 * uint64_t(dump_cycle) + phase) * half_period);
#else
    (void)phase;
#endif
  }
};

template <typename Wide>
void wide_in(Wide& w, const uint32_t* src, int words) {
  for (int i = 0; i < words; i++) w[i] = src[i];
}

template <typename Wide>
void wide_out(const Wide& w, uint32_t* dst, int words) {
  for (int i = 0; i < words; i++) dst[i] = w[i];
}

}  // namespace

extern "C" uint32_t sys_abi_version(void) { return SYS_ABI_VERSION; }

extern "C" const uint32_t* sys_abi_table(uint32_t* len) {
  static const uint32_t table[] = SYS_ABI_TABLE;
  *len = SYS_ABI_TABLE_LEN;
  return table;
}

extern "C" void* sys_new(void) { return new Sim; }

extern "C" void sys_delete(void* p) { delete static_cast<Sim*>(p); }

extern "C" int sys_waves_open(void* p, const char* path, uint64_t half_period, const char* resolution) {
#if SYS_TRACE
  Sim* s = static_cast<Sim*>(p);
  s->waves.reset(new Waves);
  s->waves->set_time_unit(resolution);
  s->waves->set_time_resolution(resolution);
  s->half_period = half_period;
  s->top->trace(s->waves.get(), 99);
  s->waves->open(path);
  return s->waves->isOpen() ? 1 : 0;
#else
  (void)p;
  (void)path;
  (void)half_period;
  (void)resolution;
  return -1;  // built without tracing
#endif
}

extern "C" void sys_waves_at(void* p, int64_t cycle) { static_cast<Sim*>(p)->dump_cycle = cycle; }

extern "C" void sys_cycle(void* p, const uint32_t* in, uint32_t* out) {
  Sim* s = static_cast<Sim*>(p);
  Vaccel* t = s->top.get();
  uint32_t f = in[SYS_IN_FLAGS];
  t->rst_n = (f & SYS_I_RST_N) != 0;
  t->m_arready = (f & SYS_I_M_READY) != 0;
  t->m_awready = (f & SYS_I_M_READY) != 0;
  t->m_rvalid = (f & SYS_I_RVALID) != 0;
  t->m_rlast = (f & SYS_I_RLAST) != 0;
  t->m_rid = (f >> SYS_I_RID_SHIFT) & 3;
  t->m_wready = (f & SYS_I_WREADY) != 0;
  t->s_awvalid = (f & SYS_I_S_AWVALID) != 0;
  t->s_wvalid = (f & SYS_I_S_WVALID) != 0;
  t->s_bready = (f & SYS_I_S_BREADY) != 0;
  t->s_arvalid = (f & SYS_I_S_ARVALID) != 0;
  t->s_rready = (f & SYS_I_S_RREADY) != 0;
  t->s_awaddr = in[SYS_IN_S_AWADDR];
  t->s_wdata = in[SYS_IN_S_WDATA];
  t->s_araddr = in[SYS_IN_S_ARADDR];
  wide_in(t->m_rdata, in + SYS_IN_RDATA, 16);
  t->clk = 0;
  t->eval();
  s->dump(0);

  uint32_t o = 0;
  o |= t->m_arvalid ? SYS_O_ARVALID : 0;
  o |= t->m_awvalid ? SYS_O_AWVALID : 0;
  o |= (uint32_t(t->m_arid) & 3) << SYS_O_ARID_SHIFT;
  o |= t->m_wvalid ? SYS_O_WVALID : 0;
  o |= t->m_wlast ? SYS_O_WLAST : 0;
  o |= t->s_awready ? SYS_O_S_AWREADY : 0;
  o |= t->s_wready ? SYS_O_S_WREADY : 0;
  o |= t->s_bvalid ? SYS_O_S_BVALID : 0;
  o |= (uint32_t(t->s_bresp) & 3) << SYS_O_S_BRESP_SHIFT;
  o |= t->s_arready ? SYS_O_S_ARREADY : 0;
  o |= t->s_rvalid ? SYS_O_S_RVALID : 0;
  o |= (uint32_t(t->s_rresp) & 3) << SYS_O_S_RRESP_SHIFT;
  o |= t->running ? SYS_O_RUNNING : 0;
  o |= (uint32_t(t->stage_overflow) & 3) << SYS_O_OVERFLOW_SHIFT;
  out[SYS_OUT_FLAGS] = o;
  out[SYS_OUT_ARADDR] = t->m_araddr;
  out[SYS_OUT_ARLEN] = t->m_arlen;
  out[SYS_OUT_AWADDR] = t->m_awaddr;
  out[SYS_OUT_AWLEN] = t->m_awlen;
  out[SYS_OUT_S_RDATA] = t->s_rdata;
  wide_out(t->m_wdata, out + SYS_OUT_WDATA, 16);
  out[SYS_OUT_WSTRB] = uint32_t(t->m_wstrb);
  out[SYS_OUT_WSTRB + 1] = uint32_t(uint64_t(t->m_wstrb) >> 32);
  out[SYS_OUT_TR_START] = t->tr_start;
  wide_out(t->tr_start_pc, out + SYS_OUT_TR_START_PC, 4);
  out[SYS_OUT_TR_FIN] = t->tr_fin;
  wide_out(t->tr_fin_pc, out + SYS_OUT_TR_FIN_PC, 6);

  t->clk = 1;
  t->eval();
  s->dump(1);
  // No falling-edge eval: nothing is clocked on it, and the next cycle's
  // first eval lowers the clock with that cycle's inputs (each eval
  // settles the logic the inputs reach, so a third one per cycle cost
  // a third more).
  if (s->dump_cycle >= 0) s->dump_cycle += 1;
}
