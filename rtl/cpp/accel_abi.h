// The per-cycle interface between a verilated `accel` (one configuration,
// built at run time into its own shared library by `rtl::verilate`) and the
// harness that drives it (`accel_loader.cc`, Rust's `rtl::device`).
//
// One call moves one clock cycle: the harness sets every input for the
// cycle, the model settles, the outputs are sampled (what the inputs and the
// state at the start of the cycle make them), then the rising edge commits.
// Words are 32 bits; the layout is fixed whatever the configuration (data
// buses at their 64-byte maximum), so the loader never depends on it.
#pragma once
#include <stdint.h>

#define SYS_ABI_VERSION 1u

// Input words.
enum {
  SYS_IN_FLAGS = 0,
  SYS_IN_S_AWADDR = 1,
  SYS_IN_S_WDATA = 2,
  SYS_IN_S_ARADDR = 3,
  SYS_IN_RDATA = 4,  // 16 words: the read beat, little-endian bytes
  SYS_IN_WORDS = 20,
};
// SYS_IN_FLAGS bits.
enum {
  SYS_I_RST_N = 1u << 0,
  SYS_I_M_READY = 1u << 1,  // arready and awready: a DRAM slot is free
  SYS_I_RVALID = 1u << 2,
  SYS_I_RLAST = 1u << 3,
  SYS_I_RID_SHIFT = 4,  // 2 bits
  SYS_I_WREADY = 1u << 6,
  SYS_I_S_AWVALID = 1u << 7,
  SYS_I_S_WVALID = 1u << 8,
  SYS_I_S_BREADY = 1u << 9,
  SYS_I_S_ARVALID = 1u << 10,
  SYS_I_S_RREADY = 1u << 11,
};

// Output words.
enum {
  SYS_OUT_FLAGS = 0,
  SYS_OUT_ARADDR = 1,
  SYS_OUT_ARLEN = 2,
  SYS_OUT_AWADDR = 3,
  SYS_OUT_AWLEN = 4,
  SYS_OUT_S_RDATA = 5,
  SYS_OUT_WDATA = 6,      // 16 words
  SYS_OUT_WSTRB = 22,     // 2 words
  SYS_OUT_TR_START = 24,  // bits: load, compute, store, finish
  SYS_OUT_TR_START_PC = 25,  // 4 words
  SYS_OUT_TR_FIN = 29,       // bits: load, store, ldw, matmul, ppu, compute sync
  SYS_OUT_TR_FIN_PC = 30,    // 6 words
  SYS_OUT_WORDS = 36,
};
// SYS_OUT_FLAGS bits.
enum {
  SYS_O_ARVALID = 1u << 0,
  SYS_O_AWVALID = 1u << 1,
  SYS_O_ARID_SHIFT = 2,  // 2 bits
  SYS_O_WVALID = 1u << 4,
  SYS_O_WLAST = 1u << 5,
  SYS_O_S_AWREADY = 1u << 6,
  SYS_O_S_WREADY = 1u << 7,
  SYS_O_S_BVALID = 1u << 8,
  SYS_O_S_BRESP_SHIFT = 9,  // 2 bits
  SYS_O_S_ARREADY = 1u << 11,
  SYS_O_S_RVALID = 1u << 12,
  SYS_O_S_RRESP_SHIFT = 13,  // 2 bits
  SYS_O_RUNNING = 1u << 15,
  SYS_O_OVERFLOW_SHIFT = 16,  // 2 bits: LOAD, STORE staging overflow
};

// The functions a configuration's library exports (C linkage).
extern "C" {
typedef uint32_t (*sys_abi_version_fn)(void);
typedef void* (*sys_new_fn)(void);
typedef void (*sys_delete_fn)(void*);
typedef int (*sys_vcd_open_fn)(void*, const char* path);
typedef void (*sys_cycle_fn)(void*, const uint32_t* in, uint32_t* out);
}
