// `mriscan data check DIR [options]`: runs the audit of data/data_check.h, prints tables (or one JSON document),
// and writes the de-duplicated Testing list.
#include <cstdio>
#include <fstream>
#include <iostream>

#include <unistd.h>

#include "data/data_check.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mriscan {

namespace {

const char* kSynopsis = R"(usage: mriscan data check DIR [options]

Audits a dataset (DIR: a root with split folders Training/ and Testing/, or one split folder): unreadable files,
exact and near duplicates within and across splits, label conflicts; writes the Testing images without a copy in
Training.
)";

const std::vector<Option> kOptions = {
    {"out", "FILE", "where to write the Testing images without a copy in Training (dedup_testing.txt)"},
    {"threads", "N", "decoding threads (all cores)"},
    {"near", "D", "max pHash Hamming distance of a near-duplicate candidate (4)"},
    {"min-correlation", "R", "min 32x32 thumbnail correlation that confirms a candidate (0.9)"},
    {"json", "", "print one JSON document instead of tables"},
};

int run_data_check_command(const std::vector<std::string>& arguments) {
  const Args args(arguments, kOptions);
  if (args.help() || args.positional().size() != 1) {
    (args.help() ? std::cout : std::cerr) << usage_text(kSynopsis, kOptions);
    return args.help() ? 0 : 2;
  }
  DataCheckOptions options;
  options.root = args.positional()[0];
  options.threads = args.get_int("threads", 0);
  options.near_threshold = args.get_int("near", 4);
  options.min_correlation = args.get_double("min-correlation", 0.9);
  if (options.threads < 0) throw CommandError("--threads must be >= 0");
  if (options.near_threshold < 0 || options.near_threshold > 64) throw CommandError("--near must be in 0..64");
  if (!(options.min_correlation >= -1.0 && options.min_correlation <= 1.0))
    throw CommandError("--min-correlation must be in [-1, 1]");

  // Progress on stderr: a live counter on a terminal, one final line otherwise (logs stay readable).
  const bool terminal = isatty(fileno(stderr));
  const DataCheckReport report = run_data_check(options, [terminal](int done, int total) {
    if (terminal) std::fprintf(stderr, "\rdata check: %d/%d files", done, total);
    if (done == total) std::fprintf(stderr, "%sdata check: inspected %d files\n", terminal ? "\r" : "", total);
  });

  std::string dedup_path;
  if (!report.testing_split.empty()) {
    dedup_path = args.get("out", "dedup_testing.txt");
    std::ofstream file(dedup_path);
    for (int i : report.dedup_testing) file << report.files[i].relative << "\n";
    if (!file) throw CommandError("cannot write '" + dedup_path + "'");
  } else if (args.has("out")) {
    throw CommandError("--out needs both a Training and a Testing split under '" + options.root + "'");
  }

  if (args.flag("json")) {
    nlohmann::json json = report.to_json();
    json["dedup_testing_file"] = dedup_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(dedup_path);
    std::cout << json.dump(2) << "\n";
  } else {
    std::cout << report.to_text();
    if (!dedup_path.empty())
      std::cout << "De-duplicated " << report.testing_split << " list (" << report.dedup_testing.size()
                << " images) written to " << dedup_path << "\n";
  }
  return 0;
}

const RegisterCommand registration({"data check", "audit a dataset: counts, corrupt files, duplicates, leakage",
                                    run_data_check_command});

}  // namespace

}  // namespace mriscan
