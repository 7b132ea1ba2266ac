import ArgumentParser
import Foundation
import Torch

/// Options every command that computes shares.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "Intra-op CPU threads for libtorch (default: all cores).")
    var threads: Int?

    @Option(help: "Device: cpu, cuda or cuda:N.")
    var device: String = "cpu"

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        // More threads than cores only makes libtorch's spinning workers fight (1000 threads hung).
        let most = 4 * ProcessInfo.processInfo.activeProcessorCount
        if let threads, threads > most { throw ValidationError("--threads must be at most \(most) (4 × the \(most / 4) cores), got \(threads)") }
        do { _ = try Device(parsing: device) } catch { throw ValidationError("--device: \(error)") }
    }

    /// Applies the thread count and returns the device, checking that it can be used.
    func apply() throws -> Device {
        // One of several ranks on this machine (torchrun's LOCAL_WORLD_SIZE): its share of the cores.
        let ranksHere = ProcessInfo.processInfo.environment["LOCAL_WORLD_SIZE"].flatMap(Int.init) ?? 1
        Torch.threads = threads ?? Swift.max(1, ProcessInfo.processInfo.activeProcessorCount / Swift.max(ranksHere, 1))
        Torch.retainFreedMemory()
        let d = try Device(parsing: device)
        if case .cuda = d {
            if let reason = Torch.cudaUnavailableReason { throw TorchError("--device \(device): \(reason)") }
            guard case .cuda(let index) = d, index < Torch.cudaDeviceCount else {
                throw TorchError("--device \(device): only \(Torch.cudaDeviceCount) CUDA device(s) visible")
            }
        }
        return d
    }
}

/// The token limit's old flag names, refused with the one name it has everywhere now.
struct RenamedTokenLimit: ParsableArguments {
    @Option(name: .customLong("max-tokens"), help: .hidden) var maxTokens: String?
    @Option(name: .customLong("new-tokens"), help: .hidden) var newTokens: String?

    func validate() throws {
        for (old, given) in [("--max-tokens", maxTokens), ("--new-tokens", newTokens)] where given != nil {
            throw ValidationError("\(old) is now --max-new-tokens (the token limit has one name everywhere, as rollout.max_new_tokens)")
        }
    }
}
