// AVX2 Box-Muller for randnCpu (randn_avx2.cpp). Internal: call only when activeIsa() == Avx2.
// Four lane pairs at once, with exactly the operations of core/philox.h's scalar logPositive /
// sinCos2Pi / boxMuller in the same order (each an IEEE double add, sub, mul, div or sqrt; no fma:
// -ffp-contract=off applies to intrinsics too), so the results are bit-identical to the scalar path.
#pragma once
#include <cstdint>

namespace nd::avx2 {

// uRadius, uAngle: four uniforms each in [2^-33, 1 - 2^-33] (normal numbers, never 0 or 1).
// z0[k] = r_k cos(2 pi uAngle_k), z1[k] = r_k sin(2 pi uAngle_k), r_k = sqrt(-2 ln uRadius_k).
void boxMuller4(const double uRadius[4], const double uAngle[4], double z0[4], double z1[4]);

// The 16 normals of Philox blocks block0 .. block0 + 3 of (seed, stream), in element order: the
// counter-based generator on four blocks at once (Philox4x32-10 with 32x32->64 products in the
// 64-bit lanes), the contract's uniforms, then boxMuller4 twice. Bit-identical to normalsFromBlock.
void normalsOf4Blocks(uint64_t seed, uint64_t stream, uint64_t block0, double out[16]);

}  // namespace nd::avx2
