// safetensors reader and writer; the format and the validation rules are described in safetensors.h.
#include "io/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "io/atomic_file.h"

namespace mriscan {

// The format is little-endian; we copy bytes straight into floats, which is only right on a little-endian host.
static_assert(std::endian::native == std::endian::little, "safetensors IO assumes a little-endian host");

namespace {

using OrderedJson = nlohmann::ordered_json;  // keeps the header's tensor order

// The reference implementation refuses headers above 100 MB; anything larger is a corrupt length field.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void fail(const std::string& path, const std::string& message) {
  throw std::runtime_error("safetensors '" + path + "': " + message);
}

[[noreturn]] void fail_tensor(const std::string& path, const std::string& name, const std::string& message) {
  fail(path, "tensor '" + name + "': " + message);
}

std::string errno_text() { return std::strerror(errno); }

// One tensor entry of the header, checked against the data buffer of `data_bytes` bytes.
struct Entry {
  std::string name;
  std::string dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range in the data buffer
};

// Bytes per element of the dtypes the format defines; 0 for a name it does not define.
uint64_t element_bytes(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

Entry parse_entry(const std::string& path, const std::string& name, const OrderedJson& info, uint64_t data_bytes) {
  if (!info.is_object()) fail_tensor(path, name, "header entry is not a JSON object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!info.contains(field)) fail_tensor(path, name, std::string("missing field '") + field + "'");

  const OrderedJson& dtype = info["dtype"];
  if (!dtype.is_string()) fail_tensor(path, name, "'dtype' is not a string");
  const uint64_t item_bytes = element_bytes(dtype.get<std::string>());
  if (item_bytes == 0) fail_tensor(path, name, "unknown dtype '" + dtype.get<std::string>() + "'");

  const OrderedJson& shape = info["shape"];
  if (!shape.is_array()) fail_tensor(path, name, "'shape' is not an array");
  if (shape.size() > static_cast<size_t>(Shape::kMaxRank))
    fail_tensor(path, name, "rank " + std::to_string(shape.size()) + " > 4 is not supported");
  std::vector<int64_t> dims;
  uint64_t numel = 1;
  for (const OrderedJson& d : shape) {
    if (!d.is_number_unsigned())
      fail_tensor(path, name, "shape " + shape.dump() + " has a non-integer or negative dimension");
    uint64_t dim = d.get<uint64_t>();
    if (__builtin_mul_overflow(numel, dim, &numel) || numel > (uint64_t{1} << 60))
      fail_tensor(path, name, "shape " + shape.dump() + " is absurdly large");
    dims.push_back(static_cast<int64_t>(dim));
  }

  const OrderedJson& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail_tensor(path, name, "'data_offsets' must be two non-negative integers, got " + offsets.dump());
  Entry entry{name, dtype.get<std::string>(), Shape(dims), offsets[0].get<uint64_t>(), offsets[1].get<uint64_t>()};
  if (entry.end < entry.begin) fail_tensor(path, name, "data_offsets " + offsets.dump() + " end before they begin");
  if (entry.end - entry.begin != numel * item_bytes)
    fail_tensor(path, name,
                "shape " + shape.dump() + " of " + entry.dtype + " needs " + std::to_string(numel * item_bytes) +
                    " bytes but data_offsets " + offsets.dump() + " span " + std::to_string(entry.end - entry.begin));
  if (entry.end > data_bytes)
    fail_tensor(path, name,
                "data_offsets " + offsets.dump() + " run past the end of the data (" + std::to_string(data_bytes) +
                    " bytes): the file is truncated or corrupt");
  return entry;
}

}  // namespace

void SafetensorsFile::add(const std::string& name, const Tensor& tensor) {
  if (name.empty() || name == "__metadata__")
    throw std::invalid_argument("SafetensorsFile: invalid tensor name '" + name + "'");
  if (!tensor.defined()) throw std::invalid_argument("SafetensorsFile: tensor '" + name + "' is undefined");
  if (!tensors.emplace(name, tensor).second)
    throw std::invalid_argument("SafetensorsFile: duplicate tensor '" + name + "'");
  names.push_back(name);
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open for reading: " + errno_text());
  in.seekg(0, std::ios::end);
  const uint64_t file_bytes = static_cast<uint64_t>(in.tellg());
  in.seekg(0);

  // Header length: 8 bytes little-endian.
  if (file_bytes < 8)
    fail(path, "file is " + std::to_string(file_bytes) + " bytes, too short for the 8-byte header length");
  uint64_t header_bytes = 0;
  in.read(reinterpret_cast<char*>(&header_bytes), 8);
  if (header_bytes > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_bytes) + " is absurd (limit " +
                   std::to_string(kMaxHeaderBytes) + ")");
  if (header_bytes > file_bytes - 8)
    fail(path, "header length " + std::to_string(header_bytes) + " exceeds the " + std::to_string(file_bytes - 8) +
                   " bytes after the length field: the file is truncated or not safetensors");
  const uint64_t data_bytes = file_bytes - 8 - header_bytes;

  std::string header_text(header_bytes, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_bytes));
  if (!in) fail(path, "read error in the header");
  OrderedJson header;
  try {
    header = OrderedJson::parse(header_text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for numbers like 185E9999
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");

  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) fail(path, "'__metadata__' is not a JSON object");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) fail(path, "metadata '" + key + "' is not a string");
        file.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    // Found by tests/fuzz/fuzz_safetensors (2026-12-07): an empty name reached SafetensorsFile::add, whose
    // std::invalid_argument is no file error; refuse it here like every other bad header.
    if (name.empty()) fail(path, "a tensor has an empty name");
    entries.push_back(parse_entry(path, name, info, data_bytes));
  }

  // No two tensors may share bytes: sorted by start, each must begin after the furthest end so far.
  // (Empty tensors occupy no bytes and are skipped.)
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  const Entry* furthest = nullptr;  // the entry with the largest end among those before
  for (const Entry* e : by_offset) {
    if (furthest && e->begin < furthest->end)
      fail_tensor(path, e->name, "data_offsets overlap those of tensor '" + furthest->name + "'");
    if (!furthest || e->end > furthest->end) furthest = e;
  }

  // Data: each F32 tensor is read straight into its own aligned buffer; the others are only named.
  for (const Entry& e : entries) {
    if (e.dtype != "F32") {
      file.other_dtypes[e.name] = e.dtype;
      continue;
    }
    Tensor t(e.shape);
    in.seekg(static_cast<std::streamoff>(8 + header_bytes + e.begin));
    in.read(reinterpret_cast<char*>(t.data()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) fail_tensor(path, e.name, "read error in the data");
    file.add(e.name, t);
  }
  return file;
}

namespace {

// Writes the file non-atomically at `path`, checking every call; used on the temporary path.
void write_safetensors_plain(const std::string& path, const SafetensorsFile& file) {
  if (file.names.size() != file.tensors.size())
    throw std::invalid_argument("write_safetensors '" + path +
                                "': names and tensors disagree (use SafetensorsFile::add)");

  OrderedJson header = OrderedJson::object();
  uint64_t offset = 0;
  for (const std::string& name : file.names) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end() || !it->second.defined())
      throw std::invalid_argument("write_safetensors '" + path + "': tensor '" + name + "' is missing or undefined");
    const uint64_t bytes = static_cast<uint64_t>(it->second.numel()) * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", it->second.shape().dims()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  const uint64_t header_bytes = header_text.size();

  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (!out) throw std::runtime_error("write_safetensors: cannot create '" + path + "': " + errno_text());
  auto write = [&](const void* data, size_t bytes) {
    if (bytes && std::fwrite(data, 1, bytes, out) != bytes) {
      std::string reason = errno_text();
      std::fclose(out);
      throw std::runtime_error("write_safetensors: write to '" + path + "' failed: " + reason);
    }
  };
  write(&header_bytes, 8);
  write(header_text.data(), header_text.size());
  for (const std::string& name : file.names) {
    const Tensor& t = file.tensors.at(name);
    write(t.data(), static_cast<size_t>(t.numel()) * sizeof(float));
  }
  // Buffered data only reaches the disk (and reports ENOSPC) at flush/fsync/close: check all three.
  if (std::fflush(out) != 0 || ::fsync(fileno(out)) != 0) {
    std::string reason = errno_text();
    std::fclose(out);
    throw std::runtime_error("write_safetensors: flushing '" + path + "' failed: " + reason);
  }
  if (std::fclose(out) != 0)
    throw std::runtime_error("write_safetensors: closing '" + path + "' failed: " + errno_text());
}

}  // namespace

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  write_file_atomically(path, [&](const std::string& tmp_path) { write_safetensors_plain(tmp_path, file); });
}

}  // namespace mriscan
