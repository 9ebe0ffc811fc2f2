// `mriscan data check DIR [options]`: runs the audit of data/data_check.h, prints tables (or one JSON document),
// and writes the de-duplicated Testing list.
// What it is not: the audit itself (data/data_check.h), which this only parses options for and reports.
#include <cstdio>
#include <fstream>
#include <iostream>

#include <unistd.h>

#include "data/data_check.h"
#include "tools/command.h"
#include "tools/command_line.h"

namespace mriscan {

namespace {

const char* kSynopsis = R"(usage: mriscan data check DIR [options]

Audits a dataset (DIR: a root with split folders Training/ and Testing/, or one split folder): unreadable files,
exact and near duplicates within and across splits, label conflicts; writes the Testing images without a copy in
Training.
)";

struct DataCheckCommand {
  DataCheckOptions audit;
  std::string out;  // empty: dedup_testing.txt when there is a Testing split
  bool json = false;
};

void add_options(CommandLine& cli, DataCheckCommand& c) {
  cli.add_option("DIR", c.audit.root, "the dataset root or split folder to audit")->type_name("");
  cli.add_option("--out", c.out, "where to write the Testing images without a copy in Training (dedup_testing.txt)")
      ->type_name("FILE");
  cli.add_option("--threads", c.audit.threads, "decoding threads (all cores)")->type_name("N");
  cli.add_option("--near", c.audit.near_threshold, "max pHash Hamming distance of a near-duplicate candidate (4)")
      ->type_name("D");
  cli.add_option("--min-correlation", c.audit.min_correlation,
                 "min 32x32 thumbnail correlation that confirms a candidate (0.9)")
      ->type_name("R");
  cli.add_flag("--json", c.json, "print one JSON document instead of tables");
}

void check_ranges(const DataCheckOptions& audit) {
  if (audit.threads < 0) throw CommandError("--threads must be >= 0");
  if (audit.near_threshold < 0 || audit.near_threshold > 64) throw CommandError("--near must be in 0..64");
  if (!(audit.min_correlation >= -1.0 && audit.min_correlation <= 1.0))
    throw CommandError("--min-correlation must be in [-1, 1]");
}

// Progress on stderr: a live counter on a terminal, one final line otherwise (logs stay readable).
DataCheckReport audit_with_progress(const DataCheckOptions& audit) {
  const bool terminal = isatty(fileno(stderr));
  return run_data_check(audit, [terminal](int done, int total) {
    if (terminal) std::fprintf(stderr, "\rdata check: %d/%d files", done, total);
    if (done == total) std::fprintf(stderr, "%sdata check: inspected %d files\n", terminal ? "\r" : "", total);
  });
}

// Writes the Testing images without a copy in Training; returns the file's path, or "" when DIR has no Testing
// split (then an explicit --out is an error).
std::string write_dedup_list(const DataCheckReport& report, const DataCheckCommand& c) {
  if (report.testing_split.empty()) {
    if (!c.out.empty())
      throw CommandError("--out needs both a Training and a Testing split under '" + c.audit.root + "'");
    return "";
  }
  const std::string path = c.out.empty() ? "dedup_testing.txt" : c.out;
  std::ofstream file(path);
  for (int i : report.dedup_testing) file << report.files[i].relative << "\n";
  if (!file) throw CommandError("cannot write '" + path + "'");
  return path;
}

void print_report(const DataCheckReport& report, const std::string& dedup_path, bool json) {
  if (json) {
    nlohmann::json document = report.to_json();
    document["dedup_testing_file"] = dedup_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(dedup_path);
    std::cout << document.dump(2) << "\n";
    return;
  }
  std::cout << report.to_text();
  if (!dedup_path.empty())
    std::cout << "De-duplicated " << report.testing_split << " list (" << report.dedup_testing.size()
              << " images) written to " << dedup_path << "\n";
}

int run_data_check_command(const std::vector<std::string>& args) {
  DataCheckCommand c;
  CommandLine cli(kSynopsis);
  add_options(cli, c);
  if (cli.parse_arguments(args) == Parsed::help_printed) return 0;
  if (c.audit.root.empty()) {
    std::cerr << cli.help();
    return 2;
  }
  check_ranges(c.audit);
  const DataCheckReport report = audit_with_progress(c.audit);
  print_report(report, write_dedup_list(report, c), c.json);
  return 0;
}

const RegisterCommand registration({"data check", "audit a dataset: counts, corrupt files, duplicates, leakage",
                                    run_data_check_command});

}  // namespace

}  // namespace mriscan
