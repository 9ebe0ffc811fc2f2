// `mriscan negatives`: writes the generated non-MRI pictures (data/synthetic_negatives.h) that the
// out-of-distribution check is measured on, as PNG files, so they can be looked at or sent to a server.
#include <filesystem>
#include <iostream>

#include "data/synthetic_negatives.h"
#include "io/image_io.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan negatives --out DIR [options]

Writes DIR/<kind>_<seed>.png for every kind of generated picture that is not a brain MRI (photograph,
screenshot, diagram, document, pattern): the inputs the out-of-distribution check is measured on.
)";

const std::vector<Option> kOptions = {
    {"out", "DIR", "folder to write into (created if missing; required)"},
    {"per-kind", "N", "pictures of each kind, seeds 0 .. N-1 (10)"},
    {"size", "N", "width and height in pixels (224)"},
};

int run_negatives(const std::vector<std::string>& raw) {
  Args args(raw, kOptions);
  if (args.help()) {
    std::cout << usage_text(kSynopsis, kOptions);
    return 0;
  }
  const std::filesystem::path out = args.require("out");
  const int per_kind = args.get_int("per-kind", 10), size = args.get_int("size", 224);
  if (per_kind < 1 || size < 32) throw CommandError("--per-kind must be >= 1 and --size >= 32");
  std::filesystem::create_directories(out);
  int written = 0;
  for (NegativeKind kind : all_negative_kinds())
    for (int seed = 0; seed < per_kind; ++seed, ++written)
      write_png((out / (negative_kind_name(kind) + "_" + std::to_string(seed) + ".png")).string(),
                make_negative(kind, static_cast<uint32_t>(seed), size));
  std::cout << "wrote " << written << " pictures to " << out.string() << "\n";
  return 0;
}

const RegisterCommand kRegister({"negatives", "write the generated non-MRI test pictures as PNG", run_negatives});

}  // namespace
}  // namespace mriscan
