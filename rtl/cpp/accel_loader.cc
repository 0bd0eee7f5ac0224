#include "rtl/cpp/accel_loader.h"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

namespace systole_rtl {

AccelSim::AccelSim(void* lib, void* sim, rust::Vec<uint32_t> table, sys_delete_fn del,
                   sys_waves_open_fn waves_open, sys_waves_at_fn waves_at, sys_cycle_fn cycle)
    : lib_(lib),
      sim_(sim),
      table_(std::move(table)),
      del_(del),
      waves_open_(waves_open),
      waves_at_(waves_at),
      cycle_(cycle) {}

rust::Vec<uint32_t> AccelSim::abi_table() const { return table_; }

AccelSim::~AccelSim() {
  del_(sim_);
  // The library stays loaded: Verilator's runtime keeps thread-local state
  // that must not be unmapped while the process runs.
  (void)lib_;
}

void AccelSim::cycle(rust::Slice<const uint32_t> in, rust::Slice<uint32_t> out) {
  if (in.size() != SYS_IN_WORDS || out.size() != SYS_OUT_WORDS) {
    throw std::runtime_error("accel cycle: wrong word counts");
  }
  cycle_(sim_, in.data(), out.data());
}

bool AccelSim::waves_open(rust::Str path, uint64_t half_period, rust::Str resolution) {
  std::string p(path);
  std::string r(resolution);
  return waves_open_(sim_, p.c_str(), half_period, r.c_str()) == 1;
}

void AccelSim::waves_at(int64_t cycle) { waves_at_(sim_, cycle); }

std::unique_ptr<AccelSim> accel_open(rust::Str path) {
  std::string p(path);
  void* lib = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) throw std::runtime_error(std::string("dlopen: ") + dlerror());
  auto sym = [&](const char* name) {
    void* f = dlsym(lib, name);
    if (!f) throw std::runtime_error(p + " has no symbol " + name);
    return f;
  };
  auto version = reinterpret_cast<sys_abi_version_fn>(sym("sys_abi_version"));
  if (version() != SYS_ABI_VERSION) {
    throw std::runtime_error(p + " was built for another harness interface version");
  }
  auto table_fn = reinterpret_cast<sys_abi_table_fn>(sym("sys_abi_table"));
  uint32_t len = 0;
  const uint32_t* words = table_fn(&len);
  rust::Vec<uint32_t> table;
  for (uint32_t i = 0; i < len; i++) table.push_back(words[i]);
  auto make = reinterpret_cast<sys_new_fn>(sym("sys_new"));
  auto del = reinterpret_cast<sys_delete_fn>(sym("sys_delete"));
  auto waves_open = reinterpret_cast<sys_waves_open_fn>(sym("sys_waves_open"));
  auto waves_at = reinterpret_cast<sys_waves_at_fn>(sym("sys_waves_at"));
  auto cycle = reinterpret_cast<sys_cycle_fn>(sym("sys_cycle"));
  return std::unique_ptr<AccelSim>(new AccelSim(lib, make(), std::move(table), del, waves_open, waves_at, cycle));
}

}  // namespace systole_rtl
