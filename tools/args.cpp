// Implementation of the subcommand option parser.
#include "tools/args.h"

#include <algorithm>
#include <sstream>

#include "tools/command.h"

namespace mriscan {

Args::Args(const std::vector<std::string>& args, const std::vector<Option>& options) {
  std::set<std::string> value_options, flag_options;
  for (const Option& option : options) (option.value_name.empty() ? flag_options : value_options).insert(option.name);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      flags_.insert("help");
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    const size_t equals = name.find('=');
    const bool inline_value = equals != std::string::npos;
    if (inline_value) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    if (flag_options.count(name)) {
      if (inline_value) throw CommandError("option --" + name + " takes no value");
      flags_.insert(name);
    } else if (value_options.count(name)) {
      if (!inline_value) {
        if (i + 1 >= args.size()) throw CommandError("option --" + name + " needs a value");
        value = args[++i];
      }
      values_[name] = value;
    } else {
      throw CommandError("unknown option --" + name + " (see --help)");
    }
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto found = values_.find(name);
  return found == values_.end() ? fallback : found->second;
}

std::string Args::require(const std::string& name) const {
  auto found = values_.find(name);
  if (found == values_.end()) throw CommandError("missing required option --" + name);
  return found->second;
}

int Args::get_int(const std::string& name, int fallback) const {
  if (!has(name)) return fallback;
  try {
    size_t used = 0;
    int value = std::stoi(get(name, ""), &used);
    if (used != get(name, "").size()) throw std::invalid_argument(name);
    return value;
  } catch (const std::exception&) {
    throw CommandError("option --" + name + " expects an integer, got '" + get(name, "") + "'");
  }
}

std::vector<std::string> Args::get_list(const std::string& name) const {
  std::vector<std::string> items;
  if (!has(name)) return items;
  std::stringstream in(get(name, ""));
  for (std::string item; std::getline(in, item, ',');) {
    const size_t first = item.find_first_not_of(' '), last = item.find_last_not_of(' ');
    if (first == std::string::npos)
      throw CommandError("option --" + name + " has an empty item: '" + get(name, "") + "'");
    items.push_back(item.substr(first, last - first + 1));
  }
  return items;
}

double Args::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  try {
    size_t used = 0;
    double value = std::stod(get(name, ""), &used);
    if (used != get(name, "").size()) throw std::invalid_argument(name);
    return value;
  } catch (const std::exception&) {
    throw CommandError("option --" + name + " expects a number, got '" + get(name, "") + "'");
  }
}

std::string usage_text(const std::string& synopsis, const std::vector<Option>& options) {
  std::vector<std::string> left;  // "--name VALUE"
  size_t width = 0;
  for (const Option& option : options) {
    left.push_back("--" + option.name + (option.value_name.empty() ? "" : " " + option.value_name));
    width = std::max(width, left.back().size());
  }
  std::string text = synopsis + "\n";
  for (size_t i = 0; i < options.size(); ++i)
    text += "  " + left[i] + std::string(width + 2 - left[i].size(), ' ') + options[i].help + "\n";
  return text;
}

}  // namespace mriscan
