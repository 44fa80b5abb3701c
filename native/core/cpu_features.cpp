#include "core/cpu_features.h"

#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ND_X86 1
#endif

namespace nd {

namespace {

#if defined(ND_X86)
struct Regs { uint32_t a = 0, b = 0, c = 0, d = 0; };

Regs cpuid(uint32_t leaf, uint32_t sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

// xgetbv is issued as raw asm so this file needs no -mxsave; only called when OSXSAVE is set,
// otherwise the instruction faults.
uint64_t readXcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

bool bit(uint32_t reg, int n) { return (reg >> n) & 1u; }

std::string regsText(std::initializer_list<uint32_t> regs) {
  std::string s;
  for (uint32_t r : regs) s.append(reinterpret_cast<const char*>(&r), 4);
  return s;
}

CpuFeatures detect() {
  CpuFeatures f;
  Regs r0 = cpuid(0);
  uint32_t maxLeaf = r0.a;
  f.vendor = regsText({r0.b, r0.d, r0.c});
  if (maxLeaf >= 1) {
    Regs r1 = cpuid(1);
    f.sse2 = bit(r1.d, 26);
    f.sse41 = bit(r1.c, 19);
    f.sse42 = bit(r1.c, 20);
    f.fma = bit(r1.c, 12);
    f.avx = bit(r1.c, 28);
    f.f16c = bit(r1.c, 29);
    if (bit(r1.c, 27)) {  // OSXSAVE: the OS enabled xgetbv
      uint64_t xcr0 = readXcr0();
      f.osAvx = (xcr0 & 0x6) == 0x6;            // SSE + AVX state
      f.osAvx512 = f.osAvx && (xcr0 & 0xe0) == 0xe0;  // opmask + ZMM_Hi256 + Hi16_ZMM
    }
  }
  if (maxLeaf >= 7) {
    Regs r7 = cpuid(7, 0);
    f.avx2 = bit(r7.b, 5);
    f.avx512f = bit(r7.b, 16);
    f.avx512bw = bit(r7.b, 30);
    f.avx512dq = bit(r7.b, 17);
    f.avx512vl = bit(r7.b, 31);
    if (r7.a >= 1) f.avx512bf16 = bit(cpuid(7, 1).a, 5);
  }
  if (cpuid(0x80000000u).a >= 0x80000004u) {
    Regs a = cpuid(0x80000002u), b = cpuid(0x80000003u), c = cpuid(0x80000004u);
    std::string brand = regsText({a.a, a.b, a.c, a.d, b.a, b.b, b.c, b.d, c.a, c.b, c.c, c.d});
    brand.resize(std::strlen(brand.c_str()));  // NUL-padded
    size_t first = brand.find_first_not_of(' ');
    size_t last = brand.find_last_not_of(' ');
    f.brand = first == std::string::npos ? std::string() : brand.substr(first, last - first + 1);
  }
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

CpuIsa initialIsa() {
  CpuIsa best = isaSupported(CpuIsa::Avx2) ? CpuIsa::Avx2 : CpuIsa::Baseline;
  const char* env = std::getenv("ND_CPU_ISA");
  if (!env) return best;
  std::string v(env);
  for (char& c : v) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (v == "baseline") return CpuIsa::Baseline;
  // "avx2" can only ask for what `best` already is when supported; otherwise it falls back.
  return best;
}

std::atomic<CpuIsa>& isaSlot() {
  static std::atomic<CpuIsa> slot{initialIsa()};  // function-local static: thread-safe init
  return slot;
}

}  // namespace

const CpuFeatures& cpuFeatures() {
  static const CpuFeatures features = detect();
  return features;
}

bool isaSupported(CpuIsa isa) {
  if (isa == CpuIsa::Baseline) return true;
  const CpuFeatures& f = cpuFeatures();
  return f.avx2 && f.fma && f.f16c && f.osAvx;
}

const char* isaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Baseline: return "baseline";
    case CpuIsa::Avx2: return "avx2";
  }
  return "?";
}

CpuIsa activeIsa() { return isaSlot().load(std::memory_order_relaxed); }

void setActiveIsa(CpuIsa isa) {
  ND_REQUIRE(isaSupported(isa), Device,
             std::string("Expected a CPU that supports the requested ISA but received one without ") +
                 isaName(isa) + " (needs avx2, fma, f16c and OS ymm support)");
  isaSlot().store(isa, std::memory_order_relaxed);
}

bool avx512KernelsSupported() {
  const CpuFeatures& f = cpuFeatures();
  return f.osAvx512 && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx2 && f.fma && f.f16c;
}

}  // namespace nd
