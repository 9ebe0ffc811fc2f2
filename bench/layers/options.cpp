// Parsing mriscan_layer_bench's command line (options.h); every value is checked, a bad one is an error exit.
#include "bench/layers/options.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace mriscan::layer_bench {
namespace {

constexpr const char* kUsage =
    "usage: mriscan_layer_bench [--batch N] [--repeats N] [--warmup N] [--threads N] [--filter TEXT] [--quick]\n"
    "                           [--json PATH] [--png PATH]\n"
    "Times mriscan's kernels against oneDNN's primitives on MobileNetV2's layer shapes (NHWC fp32) and checks\n"
    "that both compute the same values; measures the FMA peak and memory bandwidth for a roofline.\n"
    "  --batch N     batch size (default 32)\n"
    "  --repeats N   timed calls per kernel, median reported (default 5, at least 5)\n"
    "  --warmup N    untimed calls first (default 2)\n"
    "  --threads N   threads for both libraries (default: OMP_NUM_THREADS or the physical cores)\n"
    "  --filter TEXT only the layers whose name contains TEXT\n"
    "  --quick       batch 2 and two shapes per kind (the smoke test)\n"
    "  --json PATH   write every figure as JSON\n"
    "  --png PATH    draw the roofline\n";

bool parse_int(const char* text, int minimum, int* out) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < minimum || value > 1 << 20) return false;
  *out = static_cast<int>(value);
  return true;
}

}  // namespace

std::optional<Options> parse_options(int argc, char** argv, int* exit_code) {
  Options o;
  bool batch_given = false;
  *exit_code = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return std::nullopt;
    }
    if (arg == "--quick") {
      o.quick = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "mriscan_layer_bench: %s needs a value (or is unknown)\n%s", arg.c_str(), kUsage);
      *exit_code = 2;
      return std::nullopt;
    }
    const char* value = argv[++i];
    bool ok = true;
    if (arg == "--batch") {
      ok = parse_int(value, 1, &o.batch);
      batch_given = true;
    } else if (arg == "--repeats") {
      ok = parse_int(value, 5, &o.repeats);
    } else if (arg == "--warmup") {
      ok = parse_int(value, 0, &o.warmup);
    } else if (arg == "--threads") {
      ok = parse_int(value, 1, &o.threads);
    } else if (arg == "--filter") {
      o.filter = value;
    } else if (arg == "--json") {
      o.json_path = value;
    } else if (arg == "--png") {
      o.png_path = value;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "mriscan_layer_bench: bad option or value: %s %s\n%s", arg.c_str(), value, kUsage);
      *exit_code = 2;
      return std::nullopt;
    }
  }
  if (o.quick && !batch_given) o.batch = 2;
  return o;
}

}  // namespace mriscan::layer_bench
