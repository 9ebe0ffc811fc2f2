// Weight files: parameters and buffers stored under torchvision names in PyTorch layouts (so a file loads into
// `torchvision.models.mobilenet_v2` with load_state_dict), converted to and from the engine's layouts.
//
//   kind            PyTorch layout in the file      engine layout in memory (engine/kernels/params.h)
//   kDenseConv      (O, I, KH, KW)                  (KH, KW, I, O)
//   kDepthwiseConv  (C, 1, KH, KW)                  (KH, KW, C)
//   kPointwiseConv  (O, I, 1, 1)                    (I, O)
//   kLinear         (out, in)                       (in, out)
//   kAsIs           any rank <= 1 (bias, BN)        same
//
// Loading: the kind follows from the engine tensor's rank and the file's shape, so nothing else is needed.
// Saving: only rank 2 is ambiguous (pointwise conv or linear). The rule is by name: a rank-2 parameter under
// "classifier." is a Linear (torchvision puts MobileNetV2's only nn.Linear at classifier.1), anything else of
// rank 2 is a 1x1 convolution. `param_kind_for` is that rule, in one place.
// What it is not: a model builder; it fills tensors that already exist (in place, sharing storage stays valid).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "layers/layer.h"

namespace mriscan {

enum class ParamKind { kDenseConv, kDepthwiseConv, kPointwiseConv, kLinear, kAsIs };

// The saving rule described above: rank 4 dense, rank 3 depthwise, rank 2 linear under "classifier." else
// pointwise, rank <= 1 as is.
ParamKind param_kind_for(const Shape& engine_shape, const std::string& name);

// PyTorch shape of an engine tensor of the given kind, e.g. (3, 3, 16, 32) dense -> (32, 16, 3, 3).
Shape file_shape_for(const Shape& engine_shape, ParamKind kind);

// File tensor -> engine layout, the kind inferred from engine_shape's rank and the file's shape. Throws
// std::runtime_error naming `name` and both shapes when they do not correspond.
Tensor to_engine_layout(const Tensor& file_tensor, const Shape& engine_shape, const std::string& name);

// Engine tensor -> PyTorch layout for the given kind (the inverse of to_engine_layout).
Tensor to_file_layout(const Tensor& engine_tensor, ParamKind kind);

// Writes every parameter (converted, named by param_kind_for) and buffer (as is) to a safetensors file,
// atomically. Throws on duplicate names.
void save_parameters(const std::string& path, const std::vector<NamedParameter>& params,
                     const std::vector<NamedBuffer>& buffers, const std::map<std::string, std::string>& metadata = {});

struct LoadOptions {
  std::vector<std::string> skip_prefixes;  // e.g. {"classifier."}: load a backbone, keep a fresh head
  bool allow_missing = false;              // missing names are reported instead of thrown
};

struct LoadReport {
  std::vector<std::string> loaded;   // names filled from the file
  std::vector<std::string> skipped;  // expected names matching a skip prefix (left untouched)
  std::vector<std::string> missing;  // expected names absent from the file (only with allow_missing)
  std::vector<std::string> unused;   // file tensors nobody asked for (including skipped ones present in the file)
  std::map<std::string, std::string> metadata;
};

// Fills params (var->value) and buffers in place from the file. Every expected name must exist (unless
// allow_missing) with a shape that converts to the engine shape; otherwise std::runtime_error names the tensor
// (and both shapes). Everything is checked before anything is written, so a failed load changes nothing.
LoadReport load_parameters(const std::string& path, const std::vector<NamedParameter>& params,
                           const std::vector<NamedBuffer>& buffers, const LoadOptions& options = {});

}  // namespace mriscan
