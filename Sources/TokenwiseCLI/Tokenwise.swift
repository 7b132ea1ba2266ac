import ArgumentParser
import Foundation
import Torch

@main
struct Tokenwise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenwise",
        abstract: "Reinforcement-learning post-training of language models with token-level credit assignment.",
        version: tokenwiseVersion,
        subcommands: [TrainCommand.self, EvalCommand.self, ReportCommand.self, Generate.self, Logprobs.self, Convert.self, CreditCommand.self, ObjectiveCommand.self, Bench.self]
    )

    /// As ArgumentParser's, but a file-system error that escaped untranslated prints as "path:
    /// reason", not as Foundation's `Error Domain=NSCocoaErrorDomain Code=…` dump.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: FileSystemError(error) ?? error)
        }
    }
}

struct FileSystemError: Error, CustomStringConvertible {
    let description: String
    init?(_ error: Error) {
        let ns = error as NSError
        guard [NSCocoaErrorDomain, NSPOSIXErrorDomain].contains(ns.domain) else { return nil }
        description = (FileErrors.path(error).map { "\($0): " } ?? "") + FileErrors.reason(error)
    }
}
