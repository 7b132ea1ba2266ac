import ArgumentParser
import Torch

@main
struct Tokenwise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenwise",
        abstract: "Reinforcement-learning post-training of language models with token-level credit assignment.",
        version: tokenwiseVersion,
        subcommands: [TrainCommand.self, EvalCommand.self, ReportCommand.self, Generate.self, Logprobs.self, Convert.self, CreditCommand.self, ObjectiveCommand.self, Bench.self]
    )
}
