#include "rtl/cpp/accel_loader.h"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

namespace systole_rtl {

AccelSim::AccelSim(void* lib, void* sim, rust::Vec<uint32_t> table, sys_delete_fn del, sys_vcd_open_fn vcd,
                   sys_cycle_fn cycle)
    : lib_(lib), sim_(sim), table_(std::move(table)), del_(del), vcd_(vcd), cycle_(cycle) {}

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

bool AccelSim::vcd_open(rust::Str path) {
  std::string p(path);
  return vcd_(sim_, p.c_str()) == 1;
}

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
  auto vcd = reinterpret_cast<sys_vcd_open_fn>(sym("sys_vcd_open"));
  auto cycle = reinterpret_cast<sys_cycle_fn>(sym("sys_cycle"));
  return std::unique_ptr<AccelSim>(new AccelSim(lib, make(), std::move(table), del, vcd, cycle));
}

}  // namespace systole_rtl
