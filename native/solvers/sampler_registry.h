// Registration of the sampler families (one file each) into the registry of sampler.cpp.
#pragma once
#include <vector>

#include "solvers/sampler.h"

namespace nd::solvers {

void addClassicSamplers(std::vector<SamplerEntry>& r);    // samplers_classic.cpp
void addDpmSolverSamplers(std::vector<SamplerEntry>& r);  // samplers_dpm.cpp
void addUniPcSamplers(std::vector<SamplerEntry>& r);      // samplers_unipc.cpp
void addSeedPaperSamplers(std::vector<SamplerEntry>& r);  // samplers_seed.cpp

template <template <class> class S>
SamplerEntry makeEntry(SamplerSpec spec) {
  SamplerEntry e;
  e.spec = std::move(spec);
  e.makeFloat = [](const SamplerSpec& sp, SamplerSetup su) -> std::unique_ptr<Sampler<float>> {
    return std::make_unique<S<float>>(sp, std::move(su));
  };
  e.makeDouble = [](const SamplerSpec& sp, SamplerSetup su) -> std::unique_ptr<Sampler<double>> {
    return std::make_unique<S<double>>(sp, std::move(su));
  };
  return e;
}

inline SamplerSpec makeSpec(std::string name, std::string family, bool stochastic, std::string order, std::string nfe,
                           std::string source, std::string notes, std::vector<OptionSpec> options = {}) {
  SamplerSpec s;
  s.name = std::move(name); s.family = std::move(family); s.stochastic = stochastic; s.order = std::move(order);
  s.nfePerStep = std::move(nfe); s.source = std::move(source); s.notes = std::move(notes); s.options = std::move(options);
  return s;
}

// Option-spec shorthands.
inline OptionSpec numberOption(std::string name, double def, double lo, double hi, std::string help) {
  OptionSpec o;
  o.name = std::move(name); o.type = OptionSpec::Type::Number; o.defaultNumber = def; o.min = lo; o.max = hi;
  o.help = std::move(help);
  return o;
}
inline OptionSpec integerOption(std::string name, int def, int lo, int hi, std::string help) {
  OptionSpec o = numberOption(std::move(name), def, lo, hi, std::move(help));
  o.type = OptionSpec::Type::Integer;
  return o;
}
inline OptionSpec boolOption(std::string name, bool def, std::string help) {
  OptionSpec o;
  o.name = std::move(name); o.type = OptionSpec::Type::Boolean; o.defaultNumber = def ? 1 : 0; o.min = 0; o.max = 1;
  o.help = std::move(help);
  return o;
}
inline OptionSpec enumOption(std::string name, std::string def, std::vector<std::string> choices, std::string help) {
  OptionSpec o;
  o.name = std::move(name); o.type = OptionSpec::Type::Enum; o.defaultChoice = std::move(def);
  o.choices = std::move(choices); o.help = std::move(help);
  return o;
}

// Shared numerics.
// phi_1(-h) style helpers are written inline by each sampler; these cover the k-diffusion
// ancestral split of a step sigma -> sigmaNext (EDM sigmas) into a deterministic part sigmaDown
// and fresh noise sigmaUp.
struct AncestralSplit { double down, up; };
inline AncestralSplit ancestralSplit(double sigmaFrom, double sigmaTo, double eta) {
  if (eta == 0 || sigmaTo == 0) return {sigmaTo, 0.0};
  double up = std::min(sigmaTo, eta * std::sqrt(std::max(0.0, sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo) /
                                                               (sigmaFrom * sigmaFrom))));
  return {std::sqrt(std::max(0.0, sigmaTo * sigmaTo - up * up)), up};
}

}  // namespace nd::solvers
