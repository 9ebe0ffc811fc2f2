// DICOM test files, made at test time by tests/io/make_dicom_fixtures.py (pydicom, and gdcmconv for the compressed
// transfer syntaxes) from one 8-bit grey image, into a temporary folder: nothing generated is kept in the
// repository. Used by tests/io/test_dicom_image.cpp and the server's DICOM tests.
// What it is not: the files' description (the script's docstring) or a DICOM writer of its own.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/image_io.h"

namespace mriscan::test_dicom {

struct DicomFixture {
  std::string name, file;
  std::string expected;        // a PGM of the expected 8-bit pixels; "" for a refused file
  int max_difference = 0;      // largest |decoded - expected| allowed
  double mean_difference = 0;  // and mean (lossy compression)
  std::string error;           // refused: a substring of the message
  bool unsupported = false;    // refused as a format (415) rather than as malformed (400)
  std::vector<std::string> markers;  // identifying strings written into the file
  std::string syntax;          // compressed files: the transfer syntax UID
};

// A binary PGM (P5, maxval 255) as an Image with the grey replicated to RGB.
inline Image read_pgm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  int width = 0, height = 0, maxval = 0;
  in >> magic >> width >> height >> maxval;
  in.get();  // the one whitespace byte before the pixels
  Image image(width, height);
  std::vector<char> grey(static_cast<size_t>(width) * height);  // (H, W)
  in.read(grey.data(), static_cast<std::streamsize>(grey.size()));
  for (size_t i = 0; i < grey.size(); ++i)
    image.rgb[3 * i] = image.rgb[3 * i + 1] = image.rgb[3 * i + 2] = static_cast<uint8_t>(grey[i]);
  return image;
}

// The red channel of `image` as a binary PGM.
inline void write_pgm(const std::string& path, const Image& image) {
  std::ofstream out(path, std::ios::binary);
  out << "P5\n" << image.width << " " << image.height << "\n255\n";
  for (size_t i = 0; i < image.rgb.size(); i += 3) out.put(static_cast<char>(image.rgb[i]));
}

class DicomFixtures {
 public:
  // Runs the script on `source` (its red channel) into `dir`. Check ok() before use; reason() says why not.
  DicomFixtures(const Image& source, const std::string& dir) {
    write_pgm(dir + "/source.pgm", source);
    const std::string command = "/usr/bin/python3 " MRISCAN_SOURCE_DIR "/tests/io/make_dicom_fixtures.py " + dir +
                                "/source.pgm " + dir + "/dicom >" + dir + "/fixtures.log 2>&1";
    const int status = std::system(command.c_str());
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
      reason_ = "pydicom is missing (Debian's python3-pydicom; scripts/install_deps.sh installs it)";
      return;
    }
    if (status != 0) {
      std::ifstream log(dir + "/fixtures.log");
      reason_ = "make_dicom_fixtures.py failed: " + std::string(std::istreambuf_iterator<char>(log), {});
      return;
    }
    for (const nlohmann::json& entry : nlohmann::json::parse(std::ifstream(dir + "/dicom/manifest.json"))) {
      DicomFixture f;
      f.name = entry["name"];
      f.file = entry["file"];
      f.expected = entry["expected"].is_string() ? entry["expected"].get<std::string>() : "";
      f.max_difference = entry.value("max_difference", 0);
      f.mean_difference = entry.value("mean_difference", 0.0);
      f.error = entry.value("error", "");
      f.unsupported = entry.value("unsupported", false);
      f.markers = entry.value("markers", std::vector<std::string>{});
      f.syntax = entry.value("syntax", "");
      all_.push_back(f);
    }
  }
  bool ok() const { return !all_.empty(); }
  const std::string& reason() const { return reason_; }
  const std::vector<DicomFixture>& all() const { return all_; }
  // The fixture `name`, or nullptr if the script made none (the compressed ones need gdcmconv).
  const DicomFixture* find(const std::string& name) const {
    for (const DicomFixture& f : all_)
      if (f.name == name) return &f;
    return nullptr;
  }

 private:
  std::vector<DicomFixture> all_;
  std::string reason_;
};

}  // namespace mriscan::test_dicom
