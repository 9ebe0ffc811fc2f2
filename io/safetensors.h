// Reading and writing the safetensors format (https://github.com/huggingface/safetensors). Tensors are F32; a
// file's tensors of any other dtype the format defines (a PyTorch state dict's I64 "num_batches_tracked", say) are
// validated like the rest but only named, in other_dtypes, so the caller decides whether they matter.
//
// Layout of a file:
//   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
//   bytes [8, 8 + N)    JSON header: {"<name>": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [b, e]},
//                                     ..., "__metadata__": {"<key>": "<string value>", ...}}
//                       (padded with spaces to a multiple of 8 so the data stays aligned)
//   bytes [8 + N, end)  the data buffer; tensor <name> is row-major little-endian in [b, e) of that buffer
//
// Reading validates everything and throws std::runtime_error naming the file and, where it applies, the
// tensor: file too short, absurd header length, invalid JSON, unknown dtype, rank > 4, shape that does not
// match the byte range, offsets past the end of the data (a truncated file) or overlapping another tensor.
// Writing is checked call by call (a full disk throws) and atomic (io/atomic_file.h), so a failed write leaves
// the previous file intact.
// What it is not: a layout converter (models/weights_io.h) or a memory-mapped reader (files here are ~10 MB).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace mriscan {

struct SafetensorsFile {
  std::vector<std::string> names;         // tensor names in file (or insertion) order
  std::map<std::string, Tensor> tensors;  // name -> tensor
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::string> other_dtypes;  // name -> dtype ("I64", "F16", ...) of tensors not read

  // Appends a tensor; throws std::invalid_argument on a duplicate name, an undefined tensor or "__metadata__".
  void add(const std::string& name, const Tensor& tensor);
  bool contains(const std::string& name) const { return tensors.count(name) != 0; }
};

SafetensorsFile read_safetensors(const std::string& path);
void write_safetensors(const std::string& path, const SafetensorsFile& file);

}  // namespace mriscan
