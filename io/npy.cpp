// .npy parsing: magic "\x93NUMPY", version, little-endian header length, a Python dict literal with 'descr',
// 'fortran_order' and 'shape', then the raw array.
#include "io/npy.h"

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace mriscan {

Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto fail = [&](const std::string& why) { return std::runtime_error(path + ": not a float32 .npy file: " + why); };
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) throw fail("bad magic");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw fail("truncated header");
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    throw fail("unsupported version " + std::to_string(major));
  }
  if (header_start + header_len > bytes.size()) throw fail("truncated header");
  const std::string header(bytes.data() + header_start, header_len);

  std::smatch match;
  if (!std::regex_search(header, match, std::regex("'descr'\\s*:\\s*'([^']*)'")) || match[1] != "<f4")
    throw fail("dtype must be '<f4' (header: " + header + ")");
  if (!std::regex_search(header, match, std::regex("'fortran_order'\\s*:\\s*(True|False)")) || match[1] != "False")
    throw fail("Fortran order is not supported");
  if (!std::regex_search(header, match, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)"))) throw fail("no shape");
  std::vector<int64_t> dims;
  std::stringstream shape_text(match[1].str());
  for (std::string item; std::getline(shape_text, item, ',');) {
    if (item.find_first_not_of(" ") == std::string::npos) continue;
    dims.push_back(std::stoll(item));
  }
  Tensor tensor{Shape(dims)};
  const size_t data_start = header_start + header_len;
  const size_t data_bytes = sizeof(float) * tensor.numel();
  if (bytes.size() - data_start != data_bytes)
    throw fail("expected " + std::to_string(data_bytes) + " data bytes for shape " + tensor.shape().str() + ", found " +
               std::to_string(bytes.size() - data_start) + " (truncated?)");
  std::memcpy(tensor.data(), bytes.data() + data_start, data_bytes);
  return tensor;
}

}  // namespace mriscan
