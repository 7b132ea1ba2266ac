import Foundation
import Fuzz
import Torch

/// `tokenwise-fuzz`: seeded, in-process mutation fuzzing of every parser a user's file reaches.
///   tokenwise-fuzz [--cases N] [--seed S] [--target NAME[,NAME…]] [--case K] [--work DIR] [--case-timeout SECONDS] [--show-refusals N]
/// Exit status: 0 when nothing was found, 1 on findings (errors of a foreign type, or that do not
/// name the file), 124 on a hang, the signal's status on a crash (the message names the input).
func option(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("tokenwise-fuzz: \(message)\n".utf8))
    exit(2)
}

let known = ["--cases", "--seed", "--target", "--case", "--work", "--case-timeout", "--show-refusals"]
for (k, a) in CommandLine.arguments.enumerated().dropFirst() where a.hasPrefix("--") && !known.contains(a) {
    fail("unknown option '\(a)' at argument \(k) (known: \(known.joined(separator: ", ")))")
}
guard let cases = Int(option("--cases") ?? "10000"), cases >= 1 else { fail("--cases must be a positive whole number") }
guard let seed = UInt64(option("--seed") ?? "1") else { fail("--seed must be a whole number >= 0") }
guard let timeout = Double(option("--case-timeout") ?? "20"), timeout > 0, timeout.isFinite else { fail("--case-timeout must be positive seconds") }
let single = option("--case").map { Int($0) ?? -1 }
if let single, single < 0 { fail("--case must be a whole number >= 0") }
let work = URL(fileURLWithPath: option("--work") ?? FileManager.default.temporaryDirectory.appendingPathComponent("tokenwise-fuzz-\(getpid())").path)

setenv("OMP_NUM_THREADS", "1", 0)
Torch.threads = 1
let all = try FuzzTarget.all()
let wanted = option("--target").map { $0.split(separator: ",").map(String.init) } ?? all.map(\.name)
for w in wanted where !all.contains(where: { $0.name == w }) { fail("unknown target '\(w)' (targets: \(all.map(\.name).joined(separator: ", ")))") }

Campaign.installWatch(caseTimeout: timeout)
var found = 0
for target in all where wanted.contains(target.name) {
    let campaign = try Campaign(target: target, seed: seed, work: work)
    var counts = FuzzCounts()
    counts.keepRefusals = Int(option("--show-refusals") ?? "0") ?? 0
    let start = Date()
    try campaign.run(single.map { $0..<($0 + 1) } ?? 0..<cases, counts: &counts)
    let seconds = Date().timeIntervalSince(start)
    print("\(target.name): \(counts.cases) cases in \(String(format: "%.1f", seconds)) s: \(counts.accepted) accepted, \(counts.rejected) refused with a clear error, \(counts.findings.count) findings")
    for f in counts.findings.prefix(20) { print("  FINDING \(f)") }
    for r in counts.refusals { print("  refused \(r.prefix(400))") }
    found += counts.findings.count
}
if found == 0 { try? FileManager.default.removeItem(at: work) }
exit(found == 0 ? 0 : 1)
