import ArgumentParser
import Foundation
import Models
import Torch
import Training

struct BenchAllReduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time c10d's Gloo all-reduce of a model's gradients (its LoRA adapters, then every weight) between ranks over loopback.",
        discussion: "The ranks are threads of this process, each with its own Gloo group connection, as separate processes would be. "
            + "Reported: the median seconds an all-reduce of every gradient takes, and its algorithm bandwidth (bytes per rank / time)."
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @Option(help: "Ranks (threads) taking part.") var ranks = 2
    @Option(help: "Timed all-reduces of each gradient set (after one untimed).") var repeats = 5
    @Option(name: .customLong("bucket-mb"), help: "Bucket size of the all-reduce, in MB (DDP's default 25).") var bucketMB = 25.0

    func validate() throws {
        guard (2...16).contains(ranks) else { throw ValidationError("--ranks must be 2…16, got \(ranks)") }
        guard (1...1000).contains(repeats) else { throw ValidationError("--repeats must be 1…1000, got \(repeats)") }
        guard bucketMB > 0, bucketMB <= 4096 else { throw ValidationError("--bucket-mb must be in (0, 4096], got \(bucketMB)") }
    }

    func run() throws {
        _ = try runtime.apply()
        let p = try modelOptions.load(device: .cpu)
        let full = p.model.parameters.map(\.shape)
        let lora = try withTorchErrors { try LoRA(attachingTo: p.model, config: RunConfig().model.lora ?? .init(), seed: 0).parameters.map(\.shape) }
        print("tokenwise bench allreduce — \(modelOptions.model), \(ranks) ranks over loopback (Gloo), buckets of \(fmt(bucketMB, 0)) MB")
        for (name, shapes) in [("LoRA gradients", lora), ("full gradients", full)] {
            let seconds = try time(shapes)
            let mb = Double(shapes.reduce(0) { $0 + $1.reduce(1, *) }) * 4 / 1e6
            print("\(name): \(shapes.count) tensors, \(fmt(mb, 1)) MB — \(fmt(seconds * 1e3, 2)) ms median over \(repeats) "
                + "(\(fmt(mb / 1e3 / seconds, 2)) GB/s algorithm bandwidth)")
        }
    }

    /// The median seconds of one all-reduce of float32 tensors of `shapes` on every rank.
    func time(_ shapes: [[Int]]) throws -> Double {
        let store = try DistributedStore.host(address: "127.0.0.1", port: 0, timeout: 120)
        let results = Box(Array(repeating: Result<[Double], Error>.success([]), count: ranks))
        let done = DispatchGroup()
        for r in 0..<ranks {
            done.enter()
            Thread {
                defer { done.leave() }
                let result = Result { () throws -> [Double] in
                    try withTorchErrors {
                        let client = try DistributedStore.connect(address: "127.0.0.1", port: store.port, timeout: 120)
                        let g = try ProcessGroup(store: client, prefix: "bench", rank: r, worldSize: ranks, deviceHost: "127.0.0.1", timeout: 120)
                        g.bucketBytes = Int(bucketMB * 1e6)
                        let grads = shapes.map { Tensor.randn($0) }
                        var times: [Double] = []
                        for k in 0...repeats {
                            try g.barrier()
                            let t0 = DispatchTime.now().uptimeNanoseconds
                            try g.allReduceSum(grads)
                            if k > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
                        }
                        return times
                    }
                }
                results.set(r, result)
            }.start()
        }
        done.wait()
        withExtendedLifetime(store) {}
        let times = try results.value[0].get().sorted()
        for r in results.value { _ = try r.get() }
        return times[times.count / 2]
    }
}

/// Values written from several threads.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var value: T
    init(_ value: T) { self.value = value }
    func set<E>(_ i: Int, _ e: E) where T == [E] { lock.lock(); value[i] = e; lock.unlock() }
}
