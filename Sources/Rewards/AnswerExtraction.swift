import Foundation

/// Where a response's final answer is: the last number, the last `\boxed{…}`, or the last
/// `<answer>…</answer>`.
public enum AnswerExtractor: String, Codable, Sendable, CaseIterable {
    case lastNumber = "last_number"
    case boxed
    case answerTag = "answer_tag"

    public func extract(_ text: String) -> String? {
        switch self {
        case .lastNumber: Answers.lastNumber(text)
        case .boxed: Answers.lastBoxed(text)
        case .answerTag: Answers.lastTagged(text, tag: "answer")
        }
    }

    /// Where in `text` (UTF-8 byte offsets) the answer `extract` reads is written: the number's own
    /// characters, or the trimmed content of the last `\boxed{…}` or `<answer>…</answer>`.
    public func byteSpan(_ text: String) -> Range<Int>? {
        let range: Range<String.Index>?
        switch self {
        case .lastNumber: range = Answers.lastNumberRange(text)
        case .boxed: range = Answers.lastBoxedRange(text).map { Answers.trimmed($0, in: text) }
        case .answerTag: range = Answers.lastTaggedRange(text, tag: "answer").map { Answers.trimmed($0, in: text) }
        }
        guard let range else { return nil }
        let utf8 = text.utf8
        return utf8.distance(from: utf8.startIndex, to: range.lowerBound)..<utf8.distance(from: utf8.startIndex, to: range.upperBound)
    }
}

public enum Answers {
    /// The last number in `text` ("−12", "3.5", "1,000", "3/4"), as written (commas removed).
    public static func lastNumber(_ text: String) -> String? {
        guard let r = lastNumberRange(text) else { return nil }
        var s = String(text.unicodeScalars[r]).replacingOccurrences(of: ",", with: "")
        if s.hasPrefix("\u{2212}") { s = "-" + s.dropFirst() }
        return s
    }

    /// Where the last number of `text` is written (its sign included).
    static func lastNumberRange(_ text: String) -> Range<String.Index>? {
        let chars = Array(text.unicodeScalars)
        var k = chars.count - 1
        func isDigit(_ c: Unicode.Scalar) -> Bool { ("0"..."9").contains(c) }
        while k >= 0, !isDigit(chars[k]) { k -= 1 }
        guard k >= 0 else { return nil }
        let end = k + 1
        // Extend left over digits, one decimal point, thousands commas and one fraction slash.
        while k > 0 {
            let c = chars[k - 1]
            if isDigit(c) { k -= 1; continue }
            if (c == "." || c == "," || c == "/") && k >= 2 && isDigit(chars[k - 2]) { k -= 1; continue }
            break
        }
        if k > 0, chars[k - 1] == "-" || chars[k - 1] == "\u{2212}" { k -= 1 }
        let scalars = text.unicodeScalars
        return scalars.index(scalars.startIndex, offsetBy: k)..<scalars.index(scalars.startIndex, offsetBy: end)
    }

    /// The content of the last `\boxed{…}` (nested braces allowed).
    public static func lastBoxed(_ text: String) -> String? {
        lastBoxedRange(text).map { String(text[$0]).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    static func lastBoxedRange(_ text: String) -> Range<String.Index>? {
        guard let start = text.range(of: "\\boxed{", options: .backwards) else { return nil }
        var depth = 1
        var i = start.upperBound
        while i < text.endIndex {
            let c = text[i]
            if c == "{" { depth += 1 } else if c == "}" {
                depth -= 1
                if depth == 0 { return start.upperBound..<i }
            }
            i = text.index(after: i)
        }
        return nil
    }

    /// The content of the last `<tag>…</tag>`.
    public static func lastTagged(_ text: String, tag: String) -> String? {
        lastTaggedRange(text, tag: tag).map { String(text[$0]).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    static func lastTaggedRange(_ text: String, tag: String) -> Range<String.Index>? {
        guard let close = text.range(of: "</\(tag)>", options: .backwards),
              let open = text.range(of: "<\(tag)>", options: .backwards, range: text.startIndex..<close.lowerBound) else { return nil }
        return open.upperBound..<close.lowerBound
    }

    /// `range` without the whitespace at its ends.
    static func trimmed(_ range: Range<String.Index>, in text: String) -> Range<String.Index> {
        var lo = range.lowerBound, hi = range.upperBound
        while lo < hi, text[lo].isWhitespace { lo = text.index(after: lo) }
        while hi > lo, text[text.index(before: hi)].isWhitespace { hi = text.index(before: hi) }
        return lo..<hi
    }

    /// A number from "42", "-3.5", "1,000", "3/4", "$12", "12." — nil when it is not one.
    public static func number(_ text: String) -> Double? {
        var s = text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: ",", with: "")
        s = s.replacingOccurrences(of: "\u{2212}", with: "-")
        for strip in ["$", "%"] where s.hasPrefix(strip) || s.hasSuffix(strip) { s = s.replacingOccurrences(of: strip, with: "") }
        if s.hasSuffix(".") { s.removeLast() }
        if let slash = s.firstIndex(of: "/") {
            guard let a = Double(s[..<slash]), let b = Double(s[s.index(after: slash)...]), b != 0 else { return nil }
            return a / b
        }
        return Double(s)
    }

    /// Numeric equivalence within a relative tolerance.
    public static func numericEqual(_ a: String, _ b: String, tolerance: Double = 1e-6) -> Bool {
        guard let x = number(a), let y = number(b) else { return false }
        return Swift.abs(x - y) <= tolerance * Swift.max(1, Swift.abs(y))
    }

    /// Exact match after trimming, lower-casing and collapsing whitespace.
    public static func exactEqual(_ a: String, _ b: String) -> Bool {
        func norm(_ s: String) -> String { s.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        return norm(a) == norm(b)
    }
}
