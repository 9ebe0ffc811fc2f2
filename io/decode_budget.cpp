// The per-request decoding budget; see decode_budget.h.
#include "io/decode_budget.h"

#include <stdexcept>

namespace mriscan {

DecodeBudget::DecodeBudget(int64_t limit_pixel_scans) : limit_(limit_pixel_scans) {
  if (limit_pixel_scans < 1) throw std::invalid_argument("DecodeBudget: the limit must be positive");
}

bool DecodeBudget::try_charge(int64_t pixel_scans) {
  if (pixel_scans < 0 || pixel_scans > limit_ - spent_) return false;
  spent_ += pixel_scans;
  return true;
}

std::string DecodeBudget::exceeded_message(const std::string& source) const {
  return "refusing to decode " + source + ": decoding this request's images would exceed the limit of " +
         std::to_string(limit_) +
         " pixel-scans per request (width x height x components, counted for every scan of a progressive JPEG); "
         "send fewer, smaller or baseline (non-progressive) images";
}

}  // namespace mriscan
