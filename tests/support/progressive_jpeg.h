// Progressive JPEGs with many scans, written by libjpeg with a scan script of our own: legitimate files (every scan
// is valid) whose cost grows with the scan count, for the scan limit and the decode budget tests
// (tests/io/test_jpeg_decode.cpp, tests/io/test_decode_budget.cpp, tests/server/test_costly_images.cpp).
// What it is not: an encoder for real use (the scripts are deliberately wasteful) or the baseline JPEG writer
// (tests/support/test_images.h write_jpeg).
#pragma once

#include <cstdio>  // jpeglib.h needs size_t and FILE declared before it
#include <cstdlib>
#include <vector>

#include <jpeglib.h>

#include "io/image_io.h"

namespace mriscan::test_images {

// The scan script: for every component, DC first (Al 1) and its refinement; then every AC coefficient k = 1..63
// in its own first scan at Al = levels - 1 followed by `levels` - 1 refinement scans down to Al 0.
// Scans: components x (2 + 63 x levels).
inline std::vector<jpeg_scan_info> refinement_scan_script(int components, int levels) {
  std::vector<jpeg_scan_info> scans;
  for (int c = 0; c < components; ++c) {
    scans.push_back({1, {c}, 0, 0, 0, 1});
    scans.push_back({1, {c}, 0, 0, 1, 0});
    for (int k = 1; k < 64; ++k) {
      scans.push_back({1, {c}, k, k, 0, levels - 1});
      for (int al = levels - 1; al > 0; --al) scans.push_back({1, {c}, k, k, al, al - 1});
    }
  }
  return scans;
}

// `image` (H, W, 3) encoded with refinement_scan_script(components, levels): components 1 encodes its red
// channel as grayscale, 3 its RGB as YCbCr (4:2:0, libjpeg's default). A black 2000 x 2000 image as grayscale with
// levels 7 is a 443-scan file of about 24 KB (under the 500-scan limit) that costs about 0.4 s to decode.
inline std::vector<uint8_t> progressive_jpeg(const Image& image, int components, int levels) {
  std::vector<jpeg_scan_info> scans = refinement_scan_script(components, levels);
  jpeg_compress_struct info{};
  jpeg_error_mgr errors{};
  info.err = jpeg_std_error(&errors);
  jpeg_create_compress(&info);
  unsigned char* buffer = nullptr;
  unsigned long length = 0;
  jpeg_mem_dest(&info, &buffer, &length);
  info.image_width = static_cast<JDIMENSION>(image.width);
  info.image_height = static_cast<JDIMENSION>(image.height);
  info.input_components = components;
  info.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&info);
  info.scan_info = scans.data();
  info.num_scans = static_cast<int>(scans.size());
  jpeg_start_compress(&info, TRUE);
  std::vector<uint8_t> row(static_cast<size_t>(image.width) * components);  // (W, components)
  while (info.next_scanline < info.image_height) {
    for (int x = 0; x < image.width; ++x)
      for (int c = 0; c < components; ++c) row[x * components + c] = image.pixel(x, info.next_scanline)[c];
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&info, rows, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::vector<uint8_t> bytes(buffer, buffer + length);
  std::free(buffer);
  return bytes;
}

}  // namespace mriscan::test_images
