// A small `--name value` / `--flag` parser for the subcommands. Unknown options are an error, so a typo never
// silently falls back to a default.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace mriscan {

class Args {
 public:
  // `value_options` take a value (`--epochs 10` or `--epochs=10`); `flag_options` do not (`--json`).
  Args(const std::vector<std::string>& args, const std::set<std::string>& value_options,
       const std::set<std::string>& flag_options);

  bool help() const { return flags_.count("help") > 0; }
  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback) const;
  std::string require(const std::string& name) const;  // throws CommandError naming the option
  int get_int(const std::string& name, int fallback) const;
  double get_double(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

}  // namespace mriscan
