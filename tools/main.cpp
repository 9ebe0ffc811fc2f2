// Entry point of the `mriscan` executable: finds the subcommand (one or two words) and runs it; an exception from
// it becomes "mriscan <command>: error: <what>" on stderr and exit status 1. `mriscan --help` lists the commands
// on stderr (exit 0); no command or an unknown one prints the same list and exits 2.
// What it is not: the commands' option parsing (each command's CommandLine, tools/command_line.h).
#include <cstdio>
#include <exception>
#include <iostream>

#include "engine/kernels/dispatch.h"
#include "tools/command.h"

namespace mriscan {
std::map<std::string, Command>& command_registry() {
  static std::map<std::string, Command> registry;
  return registry;
}
}  // namespace mriscan

static void print_usage() {
  std::cerr << "usage: mriscan <command> [options]   (mriscan <command> --help for details)\n\ncommands:\n";
  for (const auto& [name, command] : mriscan::command_registry())
    std::fprintf(stderr, "  %-12s %s\n", name.c_str(), command.summary.c_str());
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    print_usage();
    return args.empty() ? 2 : 0;
  }
  auto& registry = mriscan::command_registry();
  // Two-word commands ("data check") take precedence over one-word ones.
  std::string name = args[0];
  size_t consumed = 1;
  if (args.size() >= 2 && registry.count(args[0] + " " + args[1])) {
    name = args[0] + " " + args[1];
    consumed = 2;
  }
  auto found = registry.find(name);
  if (found == registry.end()) {
    std::cerr << "mriscan: unknown command '" << name << "'\n";
    print_usage();
    return 2;
  }
  try {
    mriscan::kernels();  // the kernel set is chosen now, so a bad MRISCAN_ISA stops the command before any work
    return found->second.run({args.begin() + consumed, args.end()});
  } catch (const std::exception& error) {
    std::cerr << "mriscan " << name << ": error: " << error.what() << "\n";
    return 1;
  }
}
