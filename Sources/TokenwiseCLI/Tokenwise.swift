import ArgumentParser
import Foundation
import Torch

@main
struct Tokenwise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenwise",
        abstract: "Reinforcement-learning post-training of language models with token-level credit assignment.",
        version: tokenwiseVersion,
        subcommands: [TrainCommand.self, EvalCommand.self, ReportCommand.self, Generate.self, ChatCommand.self, Logprobs.self, Convert.self, CreditCommand.self, ObjectiveCommand.self, PairsCommand.self, CriticalTokensCommand.self, ServeCommand.self, CompareCommand.self, DiffConfigCommand.self, Bench.self]
    )

    /// As ArgumentParser's, but a file-system error that escaped untranslated prints as "path:
    /// reason", not as Foundation's `Error Domain=NSCocoaErrorDomain Code=…` dump.
    static func main() {
        do {
            var command = try parseAsRoot(joiningNegativeValues(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch {
            exit(withError: FileSystemError(error) ?? error)
        }
    }
}

/// `--prompts -5` as `--prompts=-5`: ArgumentParser takes a value that starts with '-' for an option
/// and reports the value missing, where the option's own check names the bound it breaks.
func joiningNegativeValues(_ args: [String]) -> [String] {
    var out = [String]()
    var i = 0
    while i < args.count {
        let a = args[i]
        if a.hasPrefix("--"), !a.contains("="), i + 1 < args.count, args[i + 1].count > 1, args[i + 1].hasPrefix("-"),
           Double(args[i + 1]) != nil || args[i + 1].lowercased() == "-inf" {
            out.append("\(a)=\(args[i + 1])")
            i += 2
        } else {
            out.append(a)
            i += 1
        }
    }
    return out
}

struct FileSystemError: Error, CustomStringConvertible {
    let description: String
    init?(_ error: Error) {
        let ns = error as NSError
        guard [NSCocoaErrorDomain, NSPOSIXErrorDomain].contains(ns.domain) else { return nil }
        description = (FileErrors.path(error).map { "\($0): " } ?? "") + FileErrors.reason(error)
    }
}
