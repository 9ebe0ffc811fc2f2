// libFuzzer: the safetensors reader (io/safetensors.h), the parser behind every model file, on arbitrary bytes
// written to a file in /dev/shm (the reader takes a path). A file either loads with consistent tensors or is
// refused with std::runtime_error naming it; nothing else.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/dev/shm/mriscan_fuzz_" + std::to_string(::getpid()) + ".safetensors";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    mriscan::SafetensorsFile file = mriscan::read_safetensors(path);
    for (const std::string& name : file.names) {
      const mriscan::Tensor& tensor = file.tensors.at(name);
      if (tensor.numel() < 0) std::abort();
      volatile float sum = 0.0f;
      for (int64_t i = 0; i < tensor.numel(); ++i) sum = sum + tensor.data()[i];  // every element is readable
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
