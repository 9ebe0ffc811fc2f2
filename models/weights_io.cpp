// Layout conversion between PyTorch weight files and engine tensors, and whole-model save/load.
//
// Every kind is the same permutation seen through a reshape: a PyTorch weight is (O, I, KH, KW) and the engine
// keeps (KH, KW, I, O); depthwise is the case I = 1, O = C (engine (KH, KW, 1, C) == (KH, KW, C) in memory),
// pointwise the case KH = KW = 1 (engine (1, 1, I, O) == (I, O)), and linear the pointwise case without the
// trailing 1x1 in the file. So one loop does all conversions, in both directions.
#include "models/weights_io.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "io/safetensors.h"

namespace mriscan {
namespace {

const char* kind_name(ParamKind kind) {
  switch (kind) {
    case ParamKind::kDenseConv:
      return "dense conv";
    case ParamKind::kDepthwiseConv:
      return "depthwise conv";
    case ParamKind::kPointwiseConv:
      return "pointwise conv";
    case ParamKind::kLinear:
      return "linear";
    case ParamKind::kAsIs:
      return "vector";
  }
  return "?";
}

// The (O, I, KH, KW) view of a weight of the given kind, from its engine shape.
struct OihwDims {
  int64_t O = 1, I = 1, KH = 1, KW = 1;
};

OihwDims oihw_dims(const Shape& engine_shape, ParamKind kind) {
  switch (kind) {
    case ParamKind::kDenseConv:
      return {engine_shape[3], engine_shape[2], engine_shape[0], engine_shape[1]};
    case ParamKind::kDepthwiseConv:
      return {engine_shape[2], 1, engine_shape[0], engine_shape[1]};
    case ParamKind::kPointwiseConv:
    case ParamKind::kLinear:
      return {engine_shape[1], engine_shape[0], 1, 1};
    case ParamKind::kAsIs:
      break;
  }
  throw std::logic_error("oihw_dims: not a weight kind");
}

int expected_engine_rank(ParamKind kind) {
  switch (kind) {
    case ParamKind::kDenseConv:
      return 4;
    case ParamKind::kDepthwiseConv:
      return 3;
    case ParamKind::kPointwiseConv:
    case ParamKind::kLinear:
      return 2;
    case ParamKind::kAsIs:
      return -1;
  }
  return -1;
}

// file (O, I, KH, KW) <-> engine (KH, KW, I, O). `to_engine` picks the direction; the index pair is the same.
void permute_oihw(const float* src, float* dst, const OihwDims& d, bool to_engine) {
  for (int64_t o = 0; o < d.O; ++o)
    for (int64_t i = 0; i < d.I; ++i)
      for (int64_t kh = 0; kh < d.KH; ++kh)
        for (int64_t kw = 0; kw < d.KW; ++kw) {
          const int64_t file_index = ((o * d.I + i) * d.KH + kh) * d.KW + kw;   // (O, I, KH, KW)
          const int64_t engine_index = ((kh * d.KW + kw) * d.I + i) * d.O + o;  // (KH, KW, I, O)
          if (to_engine)
            dst[engine_index] = src[file_index];
          else
            dst[file_index] = src[engine_index];
        }
}

// Which kind turns a file tensor of `file_shape` into an engine tensor of `engine_shape` (by ranks only).
bool infer_load_kind(const Shape& file_shape, const Shape& engine_shape, ParamKind& kind) {
  const int file_rank = file_shape.rank(), engine_rank = engine_shape.rank();
  if (engine_rank == 4 && file_rank == 4)
    kind = ParamKind::kDenseConv;
  else if (engine_rank == 3 && file_rank == 4)
    kind = ParamKind::kDepthwiseConv;
  else if (engine_rank == 2 && file_rank == 4)
    kind = ParamKind::kPointwiseConv;
  else if (engine_rank == 2 && file_rank == 2)
    kind = ParamKind::kLinear;
  else if (engine_rank <= 1 && file_rank == engine_rank)
    kind = ParamKind::kAsIs;
  else
    return false;
  return true;
}

}  // namespace

ParamKind param_kind_for(const Shape& engine_shape, const std::string& name) {
  switch (engine_shape.rank()) {
    case 4:
      return ParamKind::kDenseConv;
    case 3:
      return ParamKind::kDepthwiseConv;
    case 2:
      return name.rfind("classifier.", 0) == 0 ? ParamKind::kLinear : ParamKind::kPointwiseConv;
    default:
      return ParamKind::kAsIs;
  }
}

Shape file_shape_for(const Shape& engine_shape, ParamKind kind) {
  if (kind == ParamKind::kAsIs) return engine_shape;
  if (engine_shape.rank() != expected_engine_rank(kind))
    throw std::invalid_argument(std::string("file_shape_for: a ") + kind_name(kind) + " weight has engine rank " +
                                std::to_string(expected_engine_rank(kind)) + ", got " + engine_shape.str());
  const OihwDims d = oihw_dims(engine_shape, kind);
  if (kind == ParamKind::kLinear) return Shape{d.O, d.I};
  return Shape{d.O, d.I, d.KH, d.KW};
}

Tensor to_engine_layout(const Tensor& file_tensor, const Shape& engine_shape, const std::string& name) {
  ParamKind kind;
  if (!infer_load_kind(file_tensor.shape(), engine_shape, kind))
    throw std::runtime_error("tensor '" + name + "': file shape " + file_tensor.shape().str() +
                             " cannot be converted to the model's shape " + engine_shape.str());
  const Shape expected_file_shape = file_shape_for(engine_shape, kind);
  if (file_tensor.shape() != expected_file_shape)
    throw std::runtime_error("tensor '" + name + "': file shape " + file_tensor.shape().str() +
                             " does not match the model's shape " + engine_shape.str() + " (as a " + kind_name(kind) +
                             " the file should hold " + expected_file_shape.str() + ")");
  if (kind == ParamKind::kAsIs) return file_tensor.clone();
  Tensor engine_tensor(engine_shape);
  permute_oihw(file_tensor.data(), engine_tensor.data(), oihw_dims(engine_shape, kind), /*to_engine=*/true);
  return engine_tensor;
}

Tensor to_file_layout(const Tensor& engine_tensor, ParamKind kind) {
  const Shape file_shape = file_shape_for(engine_tensor.shape(), kind);
  if (kind == ParamKind::kAsIs) return engine_tensor.clone();
  Tensor file_tensor(file_shape);
  permute_oihw(engine_tensor.data(), file_tensor.data(), oihw_dims(engine_tensor.shape(), kind), /*to_engine=*/false);
  return file_tensor;
}

void save_parameters(const std::string& path, const std::vector<NamedParameter>& params,
                     const std::vector<NamedBuffer>& buffers, const std::map<std::string, std::string>& metadata) {
  SafetensorsFile file;
  for (const NamedParameter& p : params)
    file.add(p.name, to_file_layout(p.var->value, param_kind_for(p.var->value.shape(), p.name)));
  for (const NamedBuffer& b : buffers) file.add(b.name, b.tensor);  // running_mean / running_var: rank 1, as is
  file.metadata = metadata;
  file.metadata.emplace("format", "pt");  // what safetensors.torch writes; tells readers the layouts are PyTorch's
  write_safetensors(path, file);
}

LoadReport load_parameters(const std::string& path, const std::vector<NamedParameter>& params,
                           const std::vector<NamedBuffer>& buffers, const LoadOptions& options) {
  const SafetensorsFile file = read_safetensors(path);
  LoadReport report;
  report.metadata = file.metadata;

  // Everything the model expects, parameters and buffers alike: name -> destination tensor.
  std::vector<std::pair<std::string, Tensor>> expected;
  for (const NamedParameter& p : params) expected.emplace_back(p.name, p.var->value);
  for (const NamedBuffer& b : buffers) expected.emplace_back(b.name, b.tensor);

  // Pass 1: find and convert everything, throwing before any destination is touched.
  std::set<std::string> seen, consumed;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, converted source)
  for (const auto& [name, destination] : expected) {
    if (!seen.insert(name).second)
      throw std::runtime_error("load_parameters: the model has two tensors named '" + name + "'");
    bool skip = false;
    for (const std::string& prefix : options.skip_prefixes) skip = skip || name.rfind(prefix, 0) == 0;
    if (skip) {
      report.skipped.push_back(name);
      continue;
    }
    auto it = file.tensors.find(name);
    if (auto other = file.other_dtypes.find(name); other != file.other_dtypes.end())
      throw std::runtime_error("load_parameters '" + path + "': tensor '" + name + "' has dtype " + other->second +
                               "; mriscan reads F32 weights (convert with interop/torchvision_to_safetensors.py)");
    if (it == file.tensors.end()) {
      report.missing.push_back(name);
      continue;
    }
    try {
      copies.emplace_back(destination, to_engine_layout(it->second, destination.shape(), name));
    } catch (const std::runtime_error& e) {
      throw std::runtime_error("load_parameters '" + path + "': " + e.what());
    }
    consumed.insert(name);
    report.loaded.push_back(name);
  }
  if (!report.missing.empty() && !options.allow_missing) {
    std::string list;
    for (size_t i = 0; i < report.missing.size() && i < 5; ++i) list += (i ? ", '" : "'") + report.missing[i] + "'";
    if (report.missing.size() > 5) list += " and " + std::to_string(report.missing.size() - 5) + " more";
    throw std::runtime_error("load_parameters '" + path + "': " + std::to_string(report.missing.size()) +
                             " tensor(s) missing from the file: " + list);
  }
  for (const std::string& name : file.names)
    if (!consumed.count(name)) report.unused.push_back(name);
  // Not F32, so never loaded: PyTorch's BatchNorm step counters ("num_batches_tracked", I64) matter to nothing here.
  for (const auto& [name, dtype] : file.other_dtypes) report.unused.push_back(name);

  // Pass 2: copy into the existing storage, so Vars and layers that share it see the new values.
  for (auto& [destination, source] : copies)
    std::copy(source.data(), source.data() + source.numel(), destination.data());
  return report;
}

}  // namespace mriscan
