// The `mriscan` command line: subcommands register themselves here; tools/main.cpp dispatches.
// What it is not: option parsing, which each subcommand does with a CommandLine (tools/command_line.h, CLI11).
//
// Conventions every subcommand follows: `-h`/`--help` prints usage on stdout and exits 0; `--json` makes the
// result one JSON document on stdout while progress stays on stderr; exit status 0 on success, non-zero with a
// one-line reason on stderr on error (throw CommandError or any std::exception: main catches and prints it).
#pragma once

#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace mriscan {

struct CommandError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Command {
  std::string name;     // "train", "data check", ...
  std::string summary;  // one line for `mriscan --help`
  std::function<int(const std::vector<std::string>& args)> run;
};

std::map<std::string, Command>& command_registry();

struct RegisterCommand {
  explicit RegisterCommand(Command command) { command_registry()[command.name] = std::move(command); }
};

}  // namespace mriscan
