// CommandLine: CLI11 set up for mriscan's subcommands, and the help layout they share.
#include "tools/command_line.h"

#include <algorithm>
#include <iostream>
#include <sstream>

#include "tools/command.h"

namespace mriscan {
namespace {

// The synopsis already holds the usage lines, so CLI11's generated "Usage:" line is left out and the description
// is printed as written. An option shows its value's name and nothing else ("--out FILE", "IMAGE ..."): defaults
// are written in the help text, and "REQUIRED" would repeat it.
class SynopsisFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App*, std::string) const override { return ""; }
  std::string make_description(const CLI::App* app) const override { return app->get_description(); }
  std::string make_option_opts(const CLI::Option* option) const override {
    if (option->get_type_size() == 0) return "";  // a flag
    const std::string value = option->get_type_name().empty() ? "" : " " + option->get_type_name();
    return option->get_expected_max() > 1 ? value + " ..." : value;
  }

  // Sets the help column to fit the longest "  --name VALUE" plus two spaces, so every help text starts on its
  // option's line.
  void fit_column_to(const CLI::App& app) {
    size_t width = 0;
    for (const CLI::Option* option : app.get_options()) {
      const std::string name = make_option_name(option, option->get_positional());
      width = std::max(width, name.size() + make_option_opts(option).size());
    }
    column_width(2 + width + 2);
  }
};

// What CLI11 left unparsed (allow_extras): the first unknown option or stray argument is the error.
void refuse_leftovers(const std::vector<std::string>& leftovers) {
  for (const std::string& leftover : leftovers) {
    if (leftover == "--") continue;  // the end-of-options marker CLI11 keeps
    if (leftover.size() > 1 && leftover[0] == '-')
      throw CommandError("unknown option " + leftover.substr(0, leftover.find('=')) + " (see --help)");
    throw CommandError("unexpected argument '" + leftover + "' (see --help)");
  }
}

}  // namespace

CommandLine::CommandLine(const std::string& synopsis) : CLI::App(synopsis) {
  formatter(std::make_shared<SynopsisFormatter>());  // parse_arguments fits its column to the options
  set_help_flag("-h,--help", "print this help and exit");
  allow_extras();  // unknown options are refused by refuse_leftovers, with our message
  option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)->disable_flag_override();
}

Parsed CommandLine::parse_arguments(const std::vector<std::string>& args) {
  std::static_pointer_cast<SynopsisFormatter>(get_formatter())->fit_column_to(*this);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 consumes the vector from its back
  try {
    parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << help();
    return Parsed::help_printed;
  } catch (const CLI::ParseError& error) {
    refuse_leftovers(remaining());  // a misspelt option explains a "required" or conversion error best
    throw CommandError(error.what());
  }
  refuse_leftovers(remaining());
  return Parsed::run;
}

std::vector<std::string> comma_separated(const std::string& option, const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const size_t first = item.find_first_not_of(' '), last = item.find_last_not_of(' ');
    if (first == std::string::npos) throw CommandError("option " + option + " has an empty item: '" + text + "'");
    items.push_back(item.substr(first, last - first + 1));
  }
  return items;
}

}  // namespace mriscan
