import Foundation
import Training

/// The campaign's generator: Training's seeded SplitMix64, so a campaign is reproducible from its
/// seed and case number.
public typealias FuzzRNG = SplitMix64

extension SplitMix64 {
    /// Uniform in 0..<n (n > 0).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    public mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
    public mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// Mutations of seed inputs: byte-level for binary formats (biased towards the header, where the
/// counts, lengths and offsets live), token-level for text formats (numbers swapped for boundary
/// values, keys and values spliced in from a dictionary, structure deleted, duplicated or nested).
public enum Mutator {
    /// Integers at the edges of every width a parser may convert to.
    static let interesting: [UInt64] = [
        0, 1, 2, 3, 7, 8, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 1024, 4096, 65535, 65536, 100_000,
        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 1_000_000_000_000,
        0x3FFF_FFFF_FFFF_FFFF, 0x4000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000,
        0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFE, 0xFFFF_FFFF_FFFF_FF00,
    ]
    /// Numbers as text: beyond Int and Double, negative, non-finite, and YAML's own spellings.
    static let numbers = [
        "0", "1", "-1", "2", "0.5", "-0", "-0.0", "1e12", "1e30", "1e300", "1e400", "-1e400", "1e-400", "1e-320",
        "2147483648", "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
        "18446744073709551616", "100000000000", "NaN", "nan", ".nan", "inf", ".inf", "-.inf", "Infinity", "0x10",
        "1_000", "007", "3.", ".5", "1e5", "-2147483649", "true", "null", "~",
    ]
    static let strings = ["", " ", "\\u0000", "\\ud800", "é", "<|im_end|>", "\\n", String(repeating: "a", count: 3000), "\\\"", "{", "["]

    /// One to four stacked byte mutations; `hot` is the number of leading bytes that hold the
    /// structure (they take most mutations).
    public static func binary(_ input: Data, hot: Int, rng: inout FuzzRNG, other: Data?) -> Data {
        var d = [UInt8](input)
        for _ in 0...rng.below(4) { binaryOnce(&d, hot: hot, rng: &rng, other: other) }
        return Data(d)
    }

    static func position(_ d: [UInt8], hot: Int, rng: inout FuzzRNG) -> Int {
        guard !d.isEmpty else { return 0 }
        return rng.chance(0.9) && hot > 0 ? rng.below(min(hot, d.count)) : rng.below(d.count)
    }

    static func binaryOnce(_ d: inout [UInt8], hot: Int, rng: inout FuzzRNG, other: Data?) {
        let at = position(d, hot: hot, rng: &rng)
        switch rng.below(8) {
        case 0 where !d.isEmpty: d[at] ^= UInt8(1) << UInt8(rng.below(8))
        case 1 where !d.isEmpty: d[at] = UInt8(truncatingIfNeeded: rng.pick(interesting))
        case 2, 3:
            // An integer of 2, 4 or 8 bytes, little-endian (GGUF and safetensors are), maybe negated.
            let width = rng.pick([2, 4, 8, 8])
            var v = rng.pick(interesting)
            if rng.chance(0.2) { v = 0 &- v }
            for k in 0..<width where at + k < d.count { d[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
        case 4 where !d.isEmpty: cut(&d, at: at, upTo: 64, rng: &rng)
        case 5 where !d.isEmpty: repeatChunk(&d, at: at, upTo: 64, rng: &rng)
        case 6:
            if rng.chance(0.5) { d.removeSubrange(min(at, d.count)..<d.count) } else {
                d.insert(contentsOf: (0..<(1 + rng.below(16))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            }
        default:
            // Splice: a piece of another seed over this one.
            guard let other, !other.isEmpty, !d.isEmpty else { return }
            let o = [UInt8](other), from = rng.below(o.count), n = min(1 + rng.below(256), o.count - from, d.count - at)
            d.replaceSubrange(at..<(at + n), with: o[from..<(from + n)])
        }
    }

    /// One to three stacked token-level mutations of a text input.
    public static func text(_ input: Data, dictionary: [String], rng: inout FuzzRNG) -> Data {
        var s = [UInt8](input)
        for _ in 0...rng.below(3) { textOnce(&s, dictionary: dictionary, rng: &rng) }
        return Data(s)
    }

    static func textOnce(_ s: inout [UInt8], dictionary: [String], rng: inout FuzzRNG) {
        let at = s.isEmpty ? 0 : rng.below(s.count)
        switch rng.below(9) {
        case 0, 1, 2:
            // A number (a run of digits, signs, dots and exponents) becomes a boundary value.
            let spans = numberSpans(s)
            guard !spans.isEmpty else { return }
            s.replaceSubrange(rng.pick(spans), with: Array(rng.pick(numbers).utf8))
        case 3:
            let spans = stringSpans(s)
            guard !spans.isEmpty else { return }
            let words = strings + dictionary
            s.replaceSubrange(rng.pick(spans), with: Array(rng.pick(words).utf8))
        case 4: s.insert(contentsOf: Array(rng.pick(dictionary + numbers + [",", ":", "\n", "- ", "  "]).utf8), at: at)
        case 5 where !s.isEmpty: cut(&s, at: at, upTo: 40, rng: &rng)
        case 6 where !s.isEmpty: repeatChunk(&s, at: at, upTo: 80, rng: &rng)
        case 7:
            // Deep nesting: parsers that recurse must bound their depth.
            let depth = rng.pick([64, 1000, 100_000])
            let open = rng.pick(["[", "{\"a\":", "- ", "[[", "{\"k\": ["])
            s.insert(contentsOf: Array(String(repeating: open, count: depth).utf8), at: at)
        default:
            if !s.isEmpty { s.removeSubrange(at..<s.count) }
        }
    }

    /// Removes 1…`upTo` bytes at `at`.
    static func cut(_ d: inout [UInt8], at: Int, upTo: Int, rng: inout FuzzRNG) {
        d.removeSubrange(at..<(at + min(1 + rng.below(upTo), d.count - at)))
    }

    /// Repeats the 1…`upTo` bytes at `at` in place.
    static func repeatChunk(_ d: inout [UInt8], at: Int, upTo: Int, rng: inout FuzzRNG) {
        let n = min(1 + rng.below(upTo), d.count - at)
        d.insert(contentsOf: d[at..<(at + n)], at: at)
    }

    static func numberSpans(_ s: [UInt8]) -> [Range<Int>] {
        var spans = [Range<Int>](), start: Int? = nil
        func isNum(_ c: UInt8) -> Bool { (48...57).contains(c) || c == 45 || c == 46 || c == 101 || c == 43 }
        for (i, c) in s.enumerated() {
            if isNum(c) { if start == nil { start = i } } else if let st = start {
                if s[st..<i].contains(where: { (48...57).contains($0) }) { spans.append(st..<i) }
                start = nil
            }
        }
        if let st = start, s[st...].contains(where: { (48...57).contains($0) }) { spans.append(st..<s.count) }
        return spans
    }

    /// The insides of double-quoted strings (escapes skipped).
    static func stringSpans(_ s: [UInt8]) -> [Range<Int>] {
        var spans = [Range<Int>](), start: Int? = nil, i = 0
        while i < s.count {
            if s[i] == 92 { i += 2; continue }
            if s[i] == 34 {
                if let st = start { spans.append(st..<i); start = nil } else { start = i + 1 }
            }
            i += 1
        }
        return spans
    }
}
