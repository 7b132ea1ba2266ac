import ArgumentParser
import CTorch
import Foundation
import Torch

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed, as ratios against a baseline measured in the same run.",
        subcommands: [BenchMatmul.self, BenchCredit.self, BenchTokenizer.self, BenchRollout.self, BenchServe.self, BenchTrain.self, BenchAllReduce.self]
    )
}

struct BenchMatmul: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul",
        abstract: "float32 matmul GFLOP/s against this machine's measured peak.",
        discussion: """
        The CPU peak is measured in the same run by a register-only FMA probe using the widest vector \
        unit the CPU has (AVX-512, AVX2+FMA or SSE) on the same number of threads. On CUDA the baseline \
        is the throughput of the largest matmul size given.
        """
    )

    @OptionGroup var runtime: RuntimeOptions

    @Option(help: "Square matrix sizes, comma-separated.")
    var sizes: String = "1024,2048"

    @Option(help: "Seconds to spend timing each size (after one warm-up).")
    var seconds: Double = 1.0

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard !parsedSizes.isEmpty, parsedSizes.allSatisfy({ (1...16384).contains($0) }) else {
            throw ValidationError("--sizes must be integers in 1…16384 separated by commas, got '\(sizes)'")
        }
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600], got \(seconds)") }
    }

    var parsedSizes: [Int] { sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() throws {
        let device = try runtime.apply()
        let threads = Torch.threads
        var results: [(size: Int, seconds: Double, gflops: Double)] = []
        try withTorchErrors {
            let gen = try Generator(seed: 0, device: device)
            for n in parsedSizes {
                let a = Tensor.randn([n, n], generator: gen, device: device)
                let b = Tensor.randn([n, n], generator: gen, device: device)
                _ = a.matmul(b)  // warm-up: allocations, kernel selection
                try Torch.synchronize(device)
                var iters = 0
                let start = Date()
                var elapsed = 0.0
                repeat {
                    _ = a.matmul(b)
                    try Torch.synchronize(device)
                    iters += 1
                    elapsed = Date().timeIntervalSince(start)
                } while elapsed < seconds
                let perIter = elapsed / Double(iters)
                results.append((n, perIter, 2 * Double(n) * Double(n) * Double(n) / perIter / 1e9))
            }
        }
        var peak: Double
        var peakLabel: String
        if device == .cpu {
            var isa: UnsafePointer<CChar>? = nil
            peak = tw_bench_peak_gflops(Int32(threads), seconds, &isa)
            peakLabel = "\(isa.map { String(cString: $0) } ?? "?") FMA probe, \(threads) thread(s)"
        } else {
            let largest = results.max { $0.size < $1.size }!
            peak = largest.gflops
            peakLabel = "largest matmul (\(largest.size)x\(largest.size)) on \(device)"
        }
        if json {
            let rows = results.map { "{\"size\":\($0.size),\"seconds_per_matmul\":\($0.seconds),\"gflops\":\($0.gflops),\"ratio_to_peak\":\($0.gflops / peak)}" }
            print("{\"bench\":\"matmul\",\"dtype\":\"float32\",\"device\":\"\(device)\",\"threads\":\(threads),"
                + "\"peak_gflops\":\(peak),\"peak\":\"\(peakLabel)\",\"results\":[\(rows.joined(separator: ","))]}")
            return
        }
        print("tokenwise bench matmul — float32 on \(device), \(threads) thread(s), libtorch \(Torch.version)")
        print("measured peak: \(fmt(peak, 1)) GFLOP/s (\(peakLabel))")
        print(pad("size", 12) + pad("ms/matmul", 12) + pad("GFLOP/s", 12) + "of peak")
        for r in results {
            print(pad("\(r.size)x\(r.size)", 12) + pad(fmt(r.seconds * 1000, 2), 12) + pad(fmt(r.gflops, 1), 12)
                + fmt(r.gflops / peak, 2) + "x")
        }
    }
}

func fmt(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }
