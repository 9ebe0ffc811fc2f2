// A subcommand's option parser: a CLI11 app set up with the conventions of tools/command.h. Each command declares
// its options on one CommandLine, which both parses the arguments and prints --help, so the option list cannot drift
// apart from the help (the defaults in help texts are written by hand next to the fields they describe).
//   - help: the command's synopsis (usage lines and a description), then one aligned line per option,
//     "--name VALUE  help (default)" (VALUE: the option's type_name; write the default in parentheses at the end);
//   - `--name value` and `--name=value`; given twice, the last one wins; a flag takes no value;
//   - an unknown option is an error naming it ("unknown option --learning-rate"), so a typo never silently
//     falls back to a default; so is a stray positional argument of a command that takes none.
// What it is not: the dispatch to subcommands (tools/main.cpp) or a wrapper around CLI11's option API: commands
// call add_option / add_flag themselves.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mriscan {

enum class Parsed { run, help_printed };

class CommandLine : public CLI::App {
 public:
  // `synopsis`: usage lines and a description, ending in a newline; --help prints it above the options.
  explicit CommandLine(const std::string& synopsis);

  // Parses a subcommand's arguments (those after its name). Returns Parsed::help_printed after -h/--help printed
  // the help on stdout (the command then returns 0); throws CommandError on an unknown option, a missing required
  // one or a value that does not convert, naming the option.
  [[nodiscard]] Parsed parse_arguments(const std::vector<std::string>& args);
};

// A comma-separated option value ("a, b,c") as its items, spaces around them trimmed; an empty item is an error
// naming the option.
std::vector<std::string> comma_separated(const std::string& option, const std::string& text);

}  // namespace mriscan
