// A small `--name value` / `--flag` parser for the subcommands, driven by one list of options per command: the
// same list parses the arguments and prints --help, so the two cannot drift apart. Unknown options are an error,
// so a typo never silently falls back to a default.
// What it is not: getopt; there are no short options except -h.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace mriscan {

struct Option {
  std::string name;        // given as --name
  std::string value_name;  // "N", "FILE", ... shown in --help; empty: a flag without a value
  std::string help;        // one line; write the default in parentheses at its end
};

class Args {
 public:
  // Options with a value accept `--epochs 10` and `--epochs=10`; flags take no value. -h and --help set help().
  Args(const std::vector<std::string>& args, const std::vector<Option>& options);

  bool help() const { return flags_.count("help") > 0; }
  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback) const;
  std::string require(const std::string& name) const;  // throws CommandError naming the option
  int get_int(const std::string& name, int fallback) const;
  double get_double(const std::string& name, double fallback) const;
  // A comma-separated value ("a,b,c") as its items, spaces around them trimmed; empty when absent.
  std::vector<std::string> get_list(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

// `synopsis` (usage lines and a description, ending in a newline), a blank line, then one aligned line per option.
std::string usage_text(const std::string& synopsis, const std::vector<Option>& options);

}  // namespace mriscan
