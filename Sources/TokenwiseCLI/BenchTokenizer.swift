import ArgumentParser
import Foundation
import Models

struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Tokenizer throughput (tokens/s), cold and with the word cache, against a same-run byte-copy baseline.",
        discussion: "The text is a synthetic mix of prose, code, digits, accents, CJK and emoji, repeated to --megabytes."
    )

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Size of the text in megabytes.") var megabytes = 2.0

    func validate() throws {
        guard megabytes > 0, megabytes <= 1024 else { throw ValidationError("--megabytes must be in (0, 1024], got \(megabytes)") }
    }

    func run() throws {
        let tokenizer = try modelOptions.load(device: .cpu).tokenizer   // freshly loaded: an empty word cache
        let sample = """
        The quick brown fox jumps over the lazy dog; it's 12:45 on 2024-11-21 and 3.14159 ≈ π. \
        def f(x):\n    return x ** 2 + 1  # café naïve 東京 🚀\n\tprint("ok")\n
        """
        var text = ""
        var k = 0
        while text.utf8.count < Int(megabytes * 1_000_000) { text += sample + " v\(k) "; k += 1 }
        let bytes = Double(text.utf8.count)
        func time(_ body: () -> Int) -> (Double, Int) {
            let start = DispatchTime.now().uptimeNanoseconds
            let n = body()
            return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, n)
        }
        let (copy, _) = time { Array(text.utf8).count }
        let (cold, n) = time { tokenizer.encode(text).count }
        let (warm, _) = time { tokenizer.encode(text).count }
        print("tokenwise bench tokenizer — \(Int(bytes)) bytes, \(n) tokens")
        print(pad("", 22) + pad("seconds", 10) + pad("tokens/s", 14) + "MB/s")
        print(pad("byte copy (baseline)", 22) + pad(fmt(copy, 4), 10) + pad("-", 14) + fmt(bytes / copy / 1e6, 1))
        print(pad("encode, cold cache", 22) + pad(fmt(cold, 3), 10) + pad(fmt(Double(n) / cold, 0), 14) + fmt(bytes / cold / 1e6, 2))
        print(pad("encode, warm cache", 22) + pad(fmt(warm, 3), 10) + pad(fmt(Double(n) / warm, 0), 14) + fmt(bytes / warm / 1e6, 2))
    }
}
