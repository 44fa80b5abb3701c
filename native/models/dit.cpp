#include "models/dit.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gated_residual.h"
#include "kernels/cpu/head_layer_norm.h"
#include "kernels/cpu/layer_norm_modulate.h"
#include "kernels/cpu/patchify.h"
#include "kernels/cpu/silu.h"
#include "kernels/cpu/sincos_embedding.h"

namespace nd::models {

const char* ditLayoutName(DitLayout l) noexcept {
  switch (l) {
    case DitLayout::Original: return "original";
    case DitLayout::Diffusers: return "diffusers";
    case DitLayout::DitMoe: return "dit-moe";
  }
  return "?";
}

void LinearLayer::apply(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, GemmEpilogue epilogue,
                        ThreadPool* pool, GemmRows rows) const {
  int64_t col = 0;
  for (const GemmWeight& w : parts) {
    linearCpu(x, m, ldx, w, bias.empty() ? nullptr : bias.data() + col, y + col, ldy, false, epilogue, pool, rows);
    col += w.n;
  }
}

namespace {

std::string shapeText(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Looks tensors up by name, checks their shapes, and remembers which ones the model used, so that
// whatever is left over can be reported as unexpected.
class WeightSource {
 public:
  explicit WeightSource(const io::SafetensorsFile& f) : f_(f) {}

  const io::StTensorInfo& need(const std::string& name, const Shape& shape) {
    const io::StTensorInfo* t = f_.find(name);
    ND_REQUIRE(t != nullptr, Model, "The model file lacks the tensor '" + name + "' (expected shape " + shapeText(shape) + ")");
    ND_REQUIRE(t->shape == shape, Model,
               "The tensor '" + name + "' has shape " + shapeText(t->shape) + "; expected " + shapeText(shape));
    used_.insert(name);
    return *t;
  }
  // A tensor whose shape defines part of the config: only its rank is known in advance.
  const io::StTensorInfo& needRank(const std::string& name, size_t rank) {
    const io::StTensorInfo* t = f_.find(name);
    ND_REQUIRE(t != nullptr, Model, "The model file lacks the tensor '" + name + "'");
    ND_REQUIRE(t->shape.size() == rank, Model,
               "The tensor '" + name + "' has shape " + shapeText(t->shape) + "; expected " + std::to_string(rank) + " dimensions");
    return *t;
  }
  void ignore(const std::string& name) { used_.insert(name); }

  GemmWeight weight(const std::string& name, int64_t n, int64_t k, std::vector<std::vector<uint8_t>>& owned) {
    const io::StTensorInfo& t = need(name, {n, k});
    return gemmWeight(t, n, k, owned);
  }
  // A conv kernel [n, c, p, p] read as an [n, c*p*p] matrix.
  GemmWeight weightAs(const io::StTensorInfo& t, int64_t n, int64_t k, std::vector<std::vector<uint8_t>>& owned) {
    used_.insert(t.name);
    return gemmWeight(t, n, k, owned);
  }
  std::vector<float> floats(const std::string& name, const Shape& shape) {
    const io::StTensorInfo& t = need(name, shape);
    return floatsOf(t);
  }
  std::vector<float> floatsOf(const io::StTensorInfo& t) {
    checkFloat(t);
    std::vector<float> v(static_cast<size_t>(t.numel()));
    f_.readInto(t, v.data(), DType::F32);
    return v;
  }
  void checkFloat(const io::StTensorInfo& t) const {
    auto dt = io::toDType(t.dtype);
    ND_REQUIRE(dt && isFloating(*dt), Model,
               "The tensor '" + t.name + "' has dtype " + io::stDTypeName(t.dtype) + "; expected F32, F16, BF16 or F64");
  }
  void checkUnused() const {
    for (const io::StTensorInfo& t : f_.header().tensors)
      ND_REQUIRE(used_.count(t.name) != 0, Model, "The model file has an unexpected tensor '" + t.name + "' " + shapeText(t.shape));
  }
 private:
  GemmWeight gemmWeight(const io::StTensorInfo& t, int64_t n, int64_t k, std::vector<std::vector<uint8_t>>& owned) {
    checkFloat(t);
    GemmWeight w;
    w.n = n;
    w.k = k;
    w.ld = k;
    DType dt = *io::toDType(t.dtype);
    if (dt == DType::F64) {  // rare: widen once to f32, our compute type
      owned.emplace_back(static_cast<size_t>(n * k) * sizeof(float));
      f_.readInto(t, owned.back().data(), DType::F32);
      w.data = owned.back().data();
      w.dtype = DType::F32;
    } else {
      w.data = f_.rawData(t);
      w.dtype = dt;
    }
    return w;
  }

  const io::SafetensorsFile& f_;
  std::set<std::string> used_;
};

int64_t countBlocks(const io::SafetensorsFile& f, const std::string& prefix, const std::string& suffix) {
  int64_t d = 0;
  while (f.find(prefix + std::to_string(d) + suffix)) ++d;
  return d;
}

struct JsonConfig {
  std::optional<int64_t> heads, topK;
  std::optional<std::string> variant;
  std::optional<double> capacityFactor;
  std::optional<std::string> timeInput;
};

std::optional<int64_t> jsonInt(const io::json::Value& o, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    const io::json::Value* v = o.get(k);
    if (!v) continue;
    uint64_t u = 0;
    ND_REQUIRE(io::json::toUint64(*v, u) == io::json::UintParse::Ok && u < (uint64_t(1) << 31), Model,
               std::string("The model config's \"") + k + "\" must be a non-negative integer");
    return int64_t(u);
  }
  return std::nullopt;
}

JsonConfig parseConfigJson(const std::string& text, const std::string& where) {
  JsonConfig c;
  if (text.empty()) return c;
  io::json::Value root;
  try {
    root = io::json::parse(text);
  } catch (const Error& e) {
    throw Error(ErrorCode::Model, "The model config " + where + " is not valid JSON: " + e.what());
  }
  ND_REQUIRE(root.isObject(), Model, "The model config " + where + " must be a JSON object");
  c.heads = jsonInt(root, {"heads", "num_heads", "num_attention_heads"});
  c.topK = jsonInt(root, {"topK", "top_k", "num_experts_per_tok"});
  if (const io::json::Value* v = root.get("variant")) {
    ND_REQUIRE(v->isString(), Model, "The model config's \"variant\" must be a string");
    c.variant = v->text;
  }
  if (const io::json::Value* v = root.get("timeInput")) {
    ND_REQUIRE(v->isString(), Model, "The model config's \"timeInput\" must be a string");
    c.timeInput = v->text;
  }
  if (const io::json::Value* v = root.get("capacityFactor")) {
    ND_REQUIRE(v->isNumber(), Model, "The model config's \"capacityFactor\" must be a number");
    c.capacityFactor = std::strtod(v->text.c_str(), nullptr);
  }
  if (const io::json::Value* v = root.get("rf")) {  // DiT-MoE's flag for rectified-flow checkpoints
    if (v->kind == io::json::Kind::Bool && v->boolean) c.timeInput = "rectified-flow";
  }
  return c;
}

std::string readSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  ND_REQUIRE(s.size() < (1u << 20), Model, "The model config " + path + " is larger than 1 MiB");
  return s;
}

int64_t defaultHeads(int64_t hidden) {
  switch (hidden) {  // the published DiT / DiT-MoE widths
    case 384: return 6;
    case 768: return 12;
    case 1024: return 16;
    case 1152: return 16;
    case 1408: return 16;
    default: break;
  }
  return hidden % 64 == 0 ? hidden / 64 : 0;
}

DitLayout detectLayout(const io::SafetensorsFile& f) {
  if (f.find("transformer_blocks.0.norm1.linear.weight") || f.find("pos_embed.proj.weight")) return DitLayout::Diffusers;
  if (f.find("blocks.0.moe.gate.weight")) return DitLayout::DitMoe;
  if (f.find("blocks.0.mlp.fc1.weight") || f.find("x_embedder.proj.weight")) return DitLayout::Original;
  throw Error(ErrorCode::Model,
              "Cannot tell the checkpoint layout: none of x_embedder.proj.weight, pos_embed.proj.weight or "
              "blocks.0.moe.gate.weight is present (pass layout: 'original' | 'diffusers' | 'dit-moe')");
}

}  // namespace

std::shared_ptr<DitModel> DitModel::load(const std::string& path, const std::string& layout, const DitOverrides& overrides) {
  std::shared_ptr<io::SafetensorsFile> file = io::SafetensorsFile::open(path);
  std::string json;
  std::string beside = path;
  if (beside.size() > 12 && beside.compare(beside.size() - 12, 12, ".safetensors") == 0) beside.resize(beside.size() - 12);
  json = readSmallFile(beside + ".json");
  if (json.empty()) {
    size_t slash = path.find_last_of('/');
    json = readSmallFile((slash == std::string::npos ? std::string(".") : path.substr(0, slash)) + "/config.json");
  }
  return fromFile(std::move(file), layout, overrides, json);
}

std::shared_ptr<DitModel> DitModel::fromFile(std::shared_ptr<io::SafetensorsFile> file, const std::string& layoutName,
                                             const DitOverrides& overrides, const std::string& configJson) {
  std::shared_ptr<DitModel> m(new DitModel());
  m->file_ = file;
  const io::SafetensorsFile& f = *file;
  DitConfig& c = m->config_;
  JsonConfig js = parseConfigJson(configJson, "beside " + (f.path().empty() ? std::string("the file") : f.path()));

  if (layoutName == "auto") c.layout = detectLayout(f);
  else if (layoutName == "original") c.layout = DitLayout::Original;
  else if (layoutName == "diffusers") c.layout = DitLayout::Diffusers;
  else if (layoutName == "dit-moe") c.layout = DitLayout::DitMoe;
  else throw Error(ErrorCode::Arg, "layout must be 'auto', 'original', 'diffusers' or 'dit-moe', got '" + layoutName + "'");
  const bool diff = c.layout == DitLayout::Diffusers;

  WeightSource src(f);
  auto& owned = m->owned_;

  // ---- the config from the shapes ------------------------------------------------------------
  const io::StTensorInfo& xe = src.needRank(diff ? "pos_embed.proj.weight" : "x_embedder.proj.weight", 4);
  c.hidden = xe.shape[0];
  c.inChannels = xe.shape[1];
  c.patch = xe.shape[2];
  ND_REQUIRE(c.patch >= 1 && xe.shape[3] == c.patch && c.hidden >= 4 && c.inChannels >= 1, Model,
             "The patch embedding '" + xe.name + "' must be [hidden, channels, p, p]; it is " + shapeText(xe.shape));
  const int64_t D = c.hidden, p = c.patch;
  const std::string blk = diff ? "transformer_blocks." : "blocks.";
  c.depth = countBlocks(f, blk, diff ? ".norm1.linear.weight" : ".adaLN_modulation.1.weight");
  ND_REQUIRE(c.depth >= 1, Model, "The model file has no transformer blocks (" + blk + "0.* is missing)");
  c.family = (!diff && f.find("blocks.0.moe.gate.weight")) ? "dit-moe" : "dit";
  if (c.layout == DitLayout::DitMoe) c.family = "dit-moe";
  const std::string tPre = diff ? "transformer_blocks.0.norm1.emb.timestep_embedder.linear_" : "t_embedder.mlp.";
  const io::StTensorInfo& t0 = src.needRank(diff ? tPre + "1.weight" : tPre + "0.weight", 2);
  c.freqDim = t0.shape[1];
  ND_REQUIRE(c.freqDim >= 2 && c.freqDim % 2 == 0, Model, "The timestep embedder's input width must be even, got " + std::to_string(c.freqDim));
  const io::StTensorInfo& table = src.needRank(diff ? "transformer_blocks.0.norm1.emb.class_embedder.embedding_table.weight"
                                                    : "y_embedder.embedding_table.weight", 2);
  c.numClasses = table.shape[0] - 1;
  ND_REQUIRE(c.numClasses >= 1, Model, "The class embedding table needs at least 2 rows (classes + the null class)");
  const io::StTensorInfo& fl = src.needRank(diff ? "proj_out_2.weight" : "final_layer.linear.weight", 2);
  ND_REQUIRE(fl.shape[0] % (p * p) == 0, Model, "The final linear layer's " + std::to_string(fl.shape[0]) + " outputs are not a multiple of p*p");
  c.outChannels = fl.shape[0] / (p * p);
  c.learnSigma = c.outChannels == 2 * c.inChannels;
  c.weightDType = io::toDType(xe.dtype).value_or(DType::F32);
  if (c.family == "dit-moe") {
    const io::StTensorInfo& g = src.needRank("blocks.0.moe.gate.weight", 2);
    c.experts = g.shape[0];
    c.expertHidden = src.needRank("blocks.0.moe.experts.0.gate_proj.weight", 2).shape[0];
    c.sharedHidden = f.find("blocks.0.moe.shared_experts.gate_proj.weight")
                         ? src.needRank("blocks.0.moe.shared_experts.gate_proj.weight", 2).shape[0] : 0;
    c.qkNorm = f.find("blocks.0.attn.Wqkv.weight") != nullptr;
    c.topK = overrides.topK.value_or(js.topK.value_or(std::min<int64_t>(2, c.experts)));
    ND_REQUIRE(c.topK >= 1 && c.topK <= c.experts, Arg,
               "topK must be in [1, " + std::to_string(c.experts) + "], got " + std::to_string(c.topK));
    c.capacityFactor = overrides.capacityFactor.value_or(js.capacityFactor.value_or(0.0));
    ND_REQUIRE(std::isfinite(c.capacityFactor) && c.capacityFactor >= 0, Arg, "capacityFactor must be a finite number >= 0");
    c.weightDType = io::toDType(f.find("blocks.0.moe.experts.0.gate_proj.weight")->dtype).value_or(DType::F32);
  } else {
    const io::StTensorInfo& fc1 = src.needRank(diff ? "transformer_blocks.0.ff.net.0.proj.weight" : "blocks.0.mlp.fc1.weight", 2);
    c.mlpHidden = fc1.shape[0];
    c.weightDType = io::toDType(fc1.dtype).value_or(DType::F32);
  }
  // Heads: the qk-norm width says it; otherwise the caller, a config JSON, or the published widths.
  if (c.qkNorm) {
    const io::StTensorInfo& qn = src.needRank("blocks.0.attn.q_norm.weight", 1);
    ND_REQUIRE(qn.shape[0] >= 1 && D % qn.shape[0] == 0, Model, "blocks.0.attn.q_norm.weight's width does not divide the hidden size");
    c.heads = D / qn.shape[0];
    ND_REQUIRE(!overrides.heads || *overrides.heads == c.heads, Arg,
               "heads " + std::to_string(overrides.heads.value_or(0)) + " contradicts the qk-norm width (" + std::to_string(c.heads) + " heads)");
  } else {
    c.heads = overrides.heads.value_or(js.heads.value_or(defaultHeads(D)));
  }
  ND_REQUIRE(c.heads != 0, Model, "Cannot infer the number of attention heads for hidden size " + std::to_string(D) + "; pass heads");
  ND_REQUIRE(c.heads >= 1 && D % c.heads == 0, Arg, "heads (" + std::to_string(c.heads) + ") must divide the hidden size " + std::to_string(D));
  c.variant = overrides.variant.value_or(js.variant.value_or(diff ? "diffusers" : "original"));
  ND_REQUIRE(c.variant == "original" || c.variant == "diffusers", Arg, "variant must be 'original' or 'diffusers', got '" + c.variant + "'");
  if (c.variant == "diffusers") {
    c.freqShift = 1;
    c.mlpNormEps = 1e-5;
    c.guidedChannels = int(c.inChannels);
  } else {
    c.freqShift = 0;
    c.mlpNormEps = 1e-6;
    c.guidedChannels = int(std::min<int64_t>(3, c.inChannels));
  }
  c.timeInput = overrides.timeInput.value_or(js.timeInput.value_or("discrete"));
  ND_REQUIRE(c.timeInput == "discrete" || c.timeInput == "rectified-flow", Arg,
             "timeInput must be 'discrete' or 'rectified-flow', got '" + c.timeInput + "'");

  // ---- the weights, every tensor checked -----------------------------------------------------
  const int64_t C = c.inChannels, F = c.freqDim;
  auto lin = [&](const std::string& name, int64_t n, int64_t k, bool bias) {
    LinearLayer l;
    l.n = n;
    l.k = k;
    l.parts.push_back(src.weight(name + ".weight", n, k, owned));
    if (bias) l.bias = src.floats(name + ".bias", {n});
    return l;
  };
  {
    src.need(xe.name, {D, C, p, p});
    m->patchEmbed_.n = D;
    m->patchEmbed_.k = C * p * p;
    m->patchEmbed_.parts.push_back(src.weightAs(xe, D, C * p * p, owned));
    m->patchEmbed_.bias = src.floats(diff ? "pos_embed.proj.bias" : "x_embedder.proj.bias", {D});
  }
  m->tMlp0_ = lin(diff ? tPre + "1" : tPre + "0", D, F, true);
  m->tMlp2_ = lin(diff ? tPre + "2" : tPre + "2", D, D, true);
  src.need(table.name, {c.numClasses + 1, D});
  src.checkFloat(table);
  if (io::toDType(table.dtype) == DType::F64) {
    owned.emplace_back(static_cast<size_t>((c.numClasses + 1) * D) * sizeof(float));
    f.readInto(table, owned.back().data(), DType::F32);
    m->classTable_ = owned.back().data();
    m->classTableDType_ = DType::F32;
  } else {
    m->classTable_ = f.rawData(table);
    m->classTableDType_ = *io::toDType(table.dtype);
  }
  m->finalAdaLN_ = lin(diff ? "proj_out_1" : "final_layer.adaLN_modulation.1", 2 * D, D, true);
  m->finalLinear_ = lin(diff ? "proj_out_2" : "final_layer.linear", p * p * c.outChannels, D, true);

  m->blocks_.resize(static_cast<size_t>(c.depth));
  const int64_t hd = D / c.heads;
  for (int64_t i = 0; i < c.depth; ++i) {
    DitBlockWeights& b = m->blocks_[size_t(i)];
    const std::string pre = blk + std::to_string(i) + ".";
    if (diff) {
      b.adaLN = lin(pre + "norm1.linear", 6 * D, D, true);
      // The per-block copies of the embedders: block 0's are the model's; the others must be there.
      if (i > 0) {
        src.need(pre + "norm1.emb.timestep_embedder.linear_1.weight", {D, F});
        src.need(pre + "norm1.emb.timestep_embedder.linear_1.bias", {D});
        src.need(pre + "norm1.emb.timestep_embedder.linear_2.weight", {D, D});
        src.need(pre + "norm1.emb.timestep_embedder.linear_2.bias", {D});
        src.need(pre + "norm1.emb.class_embedder.embedding_table.weight", {c.numClasses + 1, D});
      }
      b.qkv.n = 3 * D;
      b.qkv.k = D;
      for (const char* part : {"to_q", "to_k", "to_v"}) {
        b.qkv.parts.push_back(src.weight(pre + "attn1." + part + ".weight", D, D, owned));
        std::vector<float> bias = src.floats(pre + "attn1." + part + ".bias", {D});
        b.qkv.bias.insert(b.qkv.bias.end(), bias.begin(), bias.end());
      }
      b.proj = lin(pre + "attn1.to_out.0", D, D, true);
      b.fc1 = lin(pre + "ff.net.0.proj", c.mlpHidden, D, true);
      b.fc2 = lin(pre + "ff.net.2", D, c.mlpHidden, true);
    } else {
      b.adaLN = lin(pre + "adaLN_modulation.1", 6 * D, D, true);
      if (c.qkNorm) {
        b.qkv = lin(pre + "attn.Wqkv", 3 * D, D, true);
        b.proj = lin(pre + "attn.out_proj", D, D, true);
        b.qNormW = src.floats(pre + "attn.q_norm.weight", {hd});
        b.qNormB = src.floats(pre + "attn.q_norm.bias", {hd});
        b.kNormW = src.floats(pre + "attn.k_norm.weight", {hd});
        b.kNormB = src.floats(pre + "attn.k_norm.bias", {hd});
      } else {
        b.qkv = lin(pre + "attn.qkv", 3 * D, D, true);
        b.proj = lin(pre + "attn.proj", D, D, true);
      }
      if (c.family == "dit-moe") {
        moe::MoeLayerWeights& mw = b.moe;
        mw.dim = D;
        mw.router = src.weight(pre + "moe.gate.weight", c.experts, D, owned);
        mw.experts.resize(static_cast<size_t>(c.experts));
        for (int64_t e = 0; e < c.experts; ++e) {
          const std::string ep = pre + "moe.experts." + std::to_string(e) + ".";
          moe::SwiGluWeights& x = mw.experts[size_t(e)];
          x.hidden = c.expertHidden;
          x.gate = src.weight(ep + "gate_proj.weight", c.expertHidden, D, owned);
          x.up = src.weight(ep + "up_proj.weight", c.expertHidden, D, owned);
          x.down = src.weight(ep + "down_proj.weight", D, c.expertHidden, owned);
        }
        if (c.sharedHidden > 0) {
          const std::string sp = pre + "moe.shared_experts.";
          mw.shared.hidden = c.sharedHidden;
          mw.shared.gate = src.weight(sp + "gate_proj.weight", c.sharedHidden, D, owned);
          mw.shared.up = src.weight(sp + "up_proj.weight", c.sharedHidden, D, owned);
          mw.shared.down = src.weight(sp + "down_proj.weight", D, c.sharedHidden, owned);
        }
      } else {
        b.fc1 = lin(pre + "mlp.fc1", c.mlpHidden, D, true);
        b.fc2 = lin(pre + "mlp.fc2", D, c.mlpHidden, true);
      }
    }
  }
  // The fixed position table: recomputed for every grid, so a stored copy is only checked for shape.
  if (const io::StTensorInfo* pe = f.find("pos_embed")) {
    ND_REQUIRE(pe->shape.size() == 3 && pe->shape[0] == 1 && pe->shape[2] == D, Model,
               "The tensor 'pos_embed' has shape " + shapeText(pe->shape) + "; expected [1, tokens, " + std::to_string(D) + "]");
    int64_t g = int64_t(std::llround(std::sqrt(double(pe->shape[1]))));
    c.trainedGrid = g * g == pe->shape[1] ? g : 0;
    src.ignore("pos_embed");
  }
  src.checkUnused();

  int64_t params = 0, bytes = 0;
  for (const io::StTensorInfo& t : f.header().tensors) {
    params += t.numel();
    bytes += int64_t(t.end - t.begin);
  }
  c.parameters = params;
  m->weightBytes_ = bytes;
  return m;
}

void DitModel::checkInputs(int64_t n, int64_t h, int64_t w, const float* t, const int64_t* y) const {
  const DitConfig& c = config_;
  ND_REQUIRE(n >= 1, Shape, "forward() needs a batch of at least one sample");
  ND_REQUIRE(h >= c.patch && w >= c.patch && h % c.patch == 0 && w % c.patch == 0, Shape,
             "The latent's height and width (" + std::to_string(h) + " x " + std::to_string(w) +
                 ") must be positive multiples of the patch size " + std::to_string(c.patch));
  for (int64_t i = 0; i < n; ++i) {
    ND_REQUIRE(std::isfinite(t[i]), Arg, "t[" + std::to_string(i) + "] is not finite");
    ND_REQUIRE(y[i] >= 0 && y[i] <= c.numClasses, Arg,
               "y[" + std::to_string(i) + "] = " + std::to_string(y[i]) + " is not a class label in [0, " +
                   std::to_string(c.numClasses) + "] (" + std::to_string(c.numClasses) + " is the null class)");
  }
}

int64_t DitModel::activationBytes(int64_t n, int64_t h, int64_t w) const {
  const DitConfig& c = config_;
  const int64_t rows = n * (h / c.patch) * (w / c.patch);
  const int64_t D = c.hidden;
  int64_t wide = std::max({3 * D, c.mlpHidden, c.inChannels * c.patch * c.patch, c.patch * c.patch * c.outChannels});
  int64_t floats = rows * (3 * D + wide);
  if (c.family == "dit-moe") {
    // routed results (k per token), the shared expert's gate|up|act, the largest group's gate|up|act
    floats += rows * c.topK * D + rows * 3 * std::max(c.sharedHidden, c.expertHidden) + rows * (c.experts + 2 * c.topK) + rows * D * 2;
  }
  floats += (rows / std::max<int64_t>(1, n)) * D;  // the position table
  return floats * int64_t(sizeof(float));
}

std::shared_ptr<const std::vector<float>> DitModel::positionTable(int64_t gh, int64_t gw) const {
  std::lock_guard<std::mutex> lock(posMutex_);
  if (!pos_ || posGrid_ != std::make_pair(gh, gw)) {
    auto table = std::make_shared<std::vector<float>>(static_cast<size_t>(gh * gw * config_.hidden));
    sincosPosEmbed2d(gh, gw, config_.hidden, table->data());
    pos_ = std::move(table);
    posGrid_ = {gh, gw};
  }
  return pos_;
}

void DitModel::forward(const float* x, int64_t n, int64_t h, int64_t w, const float* t, const int64_t* y, float* out,
                       ThreadPool* pool, DitRouting* routing) const {
  checkInputs(n, h, w, t, y);
  const DitConfig& c = config_;
  // Batch invariance: every GEMM names its kernel, so that a sample's output has the same bits in
  // any batch. Token layers (m = n x tokens) take the tiled kernel; the per-sample conditioning
  // layers (m = n, at most a few dozen rows) the streaming one, which reads each weight once.
  constexpr GemmRows kTokens = GemmRows::Tiled, kSamples = GemmRows::Streamed;
  const int64_t p = c.patch, D = c.hidden, gh = h / p, gw = w / p, T = gh * gw, rows = n * T;
  const int64_t hd = D / c.heads;
  const int64_t wide = std::max({3 * D, c.mlpHidden, c.inChannels * p * p, p * p * c.outChannels});
  std::vector<float> hbuf(static_cast<size_t>(rows * D)), zbuf(static_cast<size_t>(rows * D)), ybuf(static_cast<size_t>(rows * D)), big(static_cast<size_t>(rows * wide));
  float* hs = hbuf.data();
  float* z = zbuf.data();
  float* yb = ybuf.data();

  // Tokens: patch embedding plus the position table of this grid.
  patchifyCpu(x, n, c.inChannels, h, w, p, big.data(), pool);
  patchEmbed_.apply(big.data(), rows, c.inChannels * p * p, hs, D, GemmEpilogue::None, pool, kTokens);
  {
    std::shared_ptr<const std::vector<float>> pos = positionTable(gh, gw);
    for (int64_t i = 0; i < n; ++i) {
      float* row = hs + i * T * D;
      for (int64_t j = 0; j < T * D; ++j) row[j] += (*pos)[size_t(j)];
    }
  }

  // Conditioning c = t_emb + y_emb, and silu(c) for every adaLN Linear.
  std::vector<float> freq(static_cast<size_t>(n * c.freqDim)), t1(static_cast<size_t>(n * D)), cond(static_cast<size_t>(n * D)), sc(static_cast<size_t>(n * D));
  timestepEmbedding(t, n, c.freqDim, 10000.0, c.freqShift, freq.data());
  tMlp0_.apply(freq.data(), n, c.freqDim, t1.data(), D, GemmEpilogue::None, pool, kSamples);
  siluCpu(t1.data(), t1.data(), n * D, pool);
  tMlp2_.apply(t1.data(), n, D, cond.data(), D, GemmEpilogue::None, pool, kSamples);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = y[i];
    float* ci = cond.data() + i * D;
    if (classTableDType_ == DType::F32) {
      const uint8_t* row = static_cast<const uint8_t*>(classTable_) + size_t(label * D) * 4;
      for (int64_t d = 0; d < D; ++d) {
        float v;
        std::memcpy(&v, row + d * 4, 4);
        ci[d] += v;
      }
    } else {
      const uint8_t* row = static_cast<const uint8_t*>(classTable_) + size_t(label * D) * 2;
      for (int64_t d = 0; d < D; ++d) {
        uint16_t u;
        std::memcpy(&u, row + d * 2, 2);
        ci[d] += classTableDType_ == DType::F16 ? halfToFloat(u) : bf16ToFloat(u);
      }
    }
  }
  siluCpu(cond.data(), sc.data(), n * D, pool);

  std::vector<float> mods(static_cast<size_t>(n * 6 * D));
  const float attnScale = float(1.0 / std::sqrt(double(hd)));
  moe::MoeOptions moeOpts;
  moeOpts.topK = c.topK;
  moeOpts.capacityFactor = c.capacityFactor;
  if (routing) routing->assign(c.family == "dit-moe" ? size_t(c.depth) : 0, moe::MoeLayerStats{});
  for (int64_t i = 0; i < c.depth; ++i) {
    const DitBlockWeights& b = blocks_[size_t(i)];
    const float* md = mods.data();
    b.adaLN.apply(sc.data(), n, D, mods.data(), 6 * D, GemmEpilogue::None, pool, kSamples);
    // h += gate_msa * Attn(modulate(LN(h), shift_msa, scale_msa))
    layerNormModulateCpu(hs, n, T, D, md, md + D, 6 * D, float(c.normEps), z, pool);
    b.qkv.apply(z, rows, D, big.data(), 3 * D, GemmEpilogue::None, pool, kTokens);
    if (c.qkNorm)
      headLayerNormCpu(big.data(), rows, c.heads, hd, b.qNormW.data(), b.qNormB.data(), b.kNormW.data(),
                       b.kNormB.data(), 1e-6f, pool);
    attentionCpu(big.data(), n, T, c.heads, hd, attnScale, z, pool);
    b.proj.apply(z, rows, D, yb, D, GemmEpilogue::None, pool, kTokens);
    gatedResidualCpu(hs, yb, n, T, D, md + 2 * D, 6 * D, pool);
    // h += gate_mlp * MLP(modulate(LN(h), shift_mlp, scale_mlp))
    layerNormModulateCpu(hs, n, T, D, md + 3 * D, md + 4 * D, 6 * D, float(c.mlpNormEps), z, pool);
    if (c.family == "dit-moe") {
      moeForwardCpu(z, n, T, b.moe, moeOpts, yb, routing ? &(*routing)[size_t(i)] : nullptr, pool);
    } else {
      b.fc1.apply(z, rows, D, big.data(), c.mlpHidden, GemmEpilogue::GeluTanh, pool, kTokens);
      b.fc2.apply(big.data(), rows, c.mlpHidden, yb, D, GemmEpilogue::None, pool, kTokens);
    }
    gatedResidualCpu(hs, yb, n, T, D, md + 5 * D, 6 * D, pool);
  }

  // Final layer: modulate(LN(h), shift, scale) -> Linear -> unpatchify.
  std::vector<float> fm(static_cast<size_t>(n * 2 * D));
  finalAdaLN_.apply(sc.data(), n, D, fm.data(), 2 * D, GemmEpilogue::None, pool, kSamples);
  layerNormModulateCpu(hs, n, T, D, fm.data(), fm.data() + D, 2 * D, float(c.normEps), z, pool);
  const int64_t outW = p * p * c.outChannels;
  finalLinear_.apply(z, rows, D, big.data(), outW, GemmEpilogue::None, pool, kTokens);
  unpatchifyCpu(big.data(), n, c.outChannels, h, w, p, out, pool);
}

}  // namespace nd::models
