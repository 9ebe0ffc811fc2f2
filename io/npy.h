// Reader for NumPy .npy files (format versions 1-3), float32 little-endian, C order only: enough for the
// per-layer ImageNet weights in ../shared/weights. Any other dtype or Fortran order is rejected with the path.
#pragma once

#include <string>

#include "engine/tensor.h"

namespace mriscan {

Tensor read_npy(const std::string& path);

}  // namespace mriscan
