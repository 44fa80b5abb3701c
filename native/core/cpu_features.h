// What the host CPU can do, read once from cpuid, and which vectorised kernel family is in use.
// Kernels compiled with AVX2/FMA/F16C (files named *_avx2.cpp) may only be entered when
// activeIsa() == CpuIsa::Avx2; the baseline paths run on any x86-64 (or non-x86) CPU.
#pragma once
#include <string>

namespace nd {

struct CpuFeatures {
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", ... ("" off x86)
  std::string brand;   // marketing name, trimmed ("" when cpuid has none)
  // Instruction-set bits as cpuid reports them. The AVX-family bits say nothing about the OS:
  // check osAvx / osAvx512 before using ymm / zmm registers.
  bool sse2 = false, sse41 = false, sse42 = false;
  bool avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false, avx512bf16 = false;
  bool osAvx = false;     // OSXSAVE set and XCR0 says the OS saves xmm and ymm state
  bool osAvx512 = false;  // osAvx and XCR0 also covers opmask and the full zmm state
};

// Detected on first use; the reference stays valid for the life of the process.
const CpuFeatures& cpuFeatures();

enum class CpuIsa { Baseline, Avx2 };

// Avx2 means avx2 + fma + f16c + osAvx. The initial choice is the best the CPU supports, lowered by
// env ND_CPU_ISA=baseline (ND_CPU_ISA=avx2 on a CPU without it falls back to baseline; other values
// are ignored). Safe to call from any thread.
CpuIsa activeIsa();
// True when this CPU and OS can run the *_avx512.cpp kernels: AVX-512 F/BW/DQ/VL (what those files are
// compiled for) plus AVX2/FMA/F16C, with zmm state enabled. Callers also honour activeIsa().
bool avx512KernelsSupported();
// True when this CPU (and OS) can run `isa`.
bool isaSupported(CpuIsa isa);
const char* isaName(CpuIsa isa);  // "baseline" / "avx2"
// Switches the kernels used by later calls (calls already running keep their choice). Throws
// ERR_ND_DEVICE when the CPU cannot run `isa`.
void setActiveIsa(CpuIsa isa);

}  // namespace nd
