// DecodeBudget: how much decoding work one request may cause, counted in pixel-scans, and the error for running
// out of it.
//
// Why: a file's bytes say little about its decoding cost. A progressive JPEG is a sequence of scans, each a pass
// over the coefficients of the components it carries, so a 24 KB file of 443 tiny refinement scans over 2000 x 2000
// pixels costs as much as 443 baseline decodes of that size (0.4 s here), and a batch request carries 64 files.
// The per-file scan limit (kMaxJpegScans, io/jpeg_decode.h) bounds one file; this bounds the request.
//
// The unit: a scan that carries c components of a W x H image costs W * H * c pixel-scans (an upper bound on the
// coefficients it visits: subsampled chroma has fewer). A baseline colour 224 x 224 JPEG is one scan of 3
// components, 150,528 pixel-scans; a PNG costs W * H * channels. Decoders charge before the work: from the header
// a lower bound (W * H * components, every component is in at least one scan) before any pixel memory, then each
// progressive scan beyond that as it arrives, so a file that would overrun the budget stops within one scan.
// What it is not: thread-safe (one request decodes its files one after another on one thread), or a limit on
// pixels per file (DecodeLimits, io/image_io.h).
#pragma once

#include <cstdint>
#include <string>

#include "io/image_io.h"

namespace mriscan {

// The request's images would cost more than its budget (the server answers 413).
struct DecodeBudgetExceeded : ImageError {
  using ImageError::ImageError;
};

class DecodeBudget {
 public:
  explicit DecodeBudget(int64_t limit_pixel_scans);

  // Charges `pixel_scans` and returns true, or charges nothing and returns false when the total would exceed the
  // limit. Never throws (libjpeg's progress monitor calls it between C frames).
  bool try_charge(int64_t pixel_scans);

  int64_t limit() const { return limit_; }
  int64_t spent() const { return spent_; }

  // The message of DecodeBudgetExceeded for `source`, naming the limit.
  std::string exceeded_message(const std::string& source) const;

 private:
  int64_t limit_;
  int64_t spent_ = 0;
};

}  // namespace mriscan
