// `mriscan negatives`: writes the generated non-MRI pictures (data/synthetic_negatives.h) that the
// out-of-distribution check is measured on, as PNG files, so they can be looked at or sent to a server.
// What it is not: the generator (data/synthetic_negatives.h) or the check (infer/ood_check.h).
#include <filesystem>
#include <iostream>

#include "data/synthetic_negatives.h"
#include "io/image_io.h"
#include "tools/command.h"
#include "tools/command_line.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan negatives --out DIR [options]

Writes DIR/<kind>_<seed>.png for every kind of generated picture that is not a brain MRI (photograph,
screenshot, diagram, document, pattern): the inputs the out-of-distribution check is measured on.
)";

int run_negatives(const std::vector<std::string>& args) {
  std::string out;
  int per_kind = 10, size = 224;
  CommandLine cli(kSynopsis);
  cli.add_option("--out", out, "folder to write into (created if missing; required)")->type_name("DIR")->required();
  cli.add_option("--per-kind", per_kind, "pictures of each kind, seeds 0 .. N-1 (10)")->type_name("N");
  cli.add_option("--size", size, "width and height in pixels (224)")->type_name("N");
  if (cli.parse_arguments(args) == Parsed::help_printed) return 0;
  if (per_kind < 1 || size < 32) throw CommandError("--per-kind must be >= 1 and --size >= 32");
  const std::filesystem::path folder = out;
  std::filesystem::create_directories(folder);
  int written = 0;
  for (NegativeKind kind : all_negative_kinds())
    for (int seed = 0; seed < per_kind; ++seed, ++written)
      write_png((folder / (negative_kind_name(kind) + "_" + std::to_string(seed) + ".png")).string(),
                make_negative(kind, static_cast<uint32_t>(seed), size));
  std::cout << "wrote " << written << " pictures to " << folder.string() << "\n";
  return 0;
}

const RegisterCommand kRegister({"negatives", "write the generated non-MRI test pictures as PNG", run_negatives});

}  // namespace
}  // namespace mriscan
