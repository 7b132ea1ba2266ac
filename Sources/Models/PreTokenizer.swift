/// Pre-tokenisation: splitting text into words before byte-level BPE, as the regexes of the
/// supported families do. Scanners over Unicode scalars implement the regexes exactly (first
/// alternative wins, greedy runs, the `\s+(?!\S)` backtrack) and run much faster than a regex engine.
public enum PreTokenizer: String, Codable, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// SmolLM2: every digit isolated first (Digits, individual_digits), then GPT-2.
    case smollm
    /// Llama-3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen2: as Llama-3 with single digits (`\p{N}`).
    case qwen2

    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
        default: false
        }
    }

    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }

    static func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }
    static func isNewline(_ s: Unicode.Scalar) -> Bool { s == "\r" || s == "\n" }

    /// Splits `text` into pre-tokens (contiguous, covering all of it).
    public func split(_ text: String) -> [Substring] {
        let scalars = Array(text.unicodeScalars)
        var bounds = [Int]()   // end offsets (in scalars)
        switch self {
        case .gpt2: Self.gpt2(scalars, 0, scalars.count, &bounds)
        case .smollm:
            var start = 0
            for i in 0..<scalars.count where Self.isNumber(scalars[i]) {
                Self.gpt2(scalars, start, i, &bounds)
                bounds.append(i + 1)
                start = i + 1
            }
            Self.gpt2(scalars, start, scalars.count, &bounds)
        case .llama3: Self.llama(scalars, maxDigits: 3, &bounds)
        case .qwen2: Self.llama(scalars, maxDigits: 1, &bounds)
        }
        // Scalar offsets → substrings.
        var out = [Substring]()
        out.reserveCapacity(bounds.count)
        var idx = text.unicodeScalars.startIndex
        var pos = 0
        for end in bounds where end > pos {
            let start = idx
            idx = text.unicodeScalars.index(idx, offsetBy: end - pos)
            pos = end
            out.append(Substring(text.unicodeScalars[start..<idx]))
        }
        return out
    }

    /// Whitespace run from i; the `\s+(?!\S)` / `\s+` pair: leave the last space for the next word
    /// when a non-space follows a run of two or more.
    static func whitespace(_ s: [Unicode.Scalar], _ i: Int, _ end: Int) -> Int {
        var j = i
        while j < end, isSpace(s[j]) { j += 1 }
        if j < end, j - i >= 2 { return j - 1 }
        return j
    }

    static func gpt2(_ s: [Unicode.Scalar], _ from: Int, _ end: Int, _ bounds: inout [Int]) {
        var i = from
        while i < end {
            let c = s[i]
            var j = i
            if c == "'", i + 1 < end, let n = contraction(s, i + 1, end, caseInsensitive: false) {
                j = i + 1 + n
            } else {
                let start = (c == " " && i + 1 < end) ? i + 1 : i
                let first = s[start]
                if start < end, isLetter(first) {
                    j = start; while j < end, isLetter(s[j]) { j += 1 }
                } else if start < end, isNumber(first) {
                    j = start; while j < end, isNumber(s[j]) { j += 1 }
                } else if start < end, !isSpace(first) {
                    j = start; while j < end, !isSpace(s[j]), !isLetter(s[j]), !isNumber(s[j]) { j += 1 }
                } else {
                    j = whitespace(s, i, end)
                }
            }
            bounds.append(j)
            i = j
        }
    }

    /// Length after the apostrophe of 's 't 're 've 'm 'll 'd, or nil.
    static func contraction(_ s: [Unicode.Scalar], _ i: Int, _ end: Int, caseInsensitive: Bool) -> Int? {
        func at(_ k: Int) -> Character? {
            guard i + k < end else { return nil }
            let ch = Character(s[i + k])
            return caseInsensitive ? Character(ch.lowercased()) : ch
        }
        switch at(0) {
        case "s", "t", "m", "d": return 1
        case "r": return at(1) == "e" ? 2 : nil
        case "v": return at(1) == "e" ? 2 : nil
        case "l": return at(1) == "l" ? 2 : nil
        default: return nil
        }
    }

    static func llama(_ s: [Unicode.Scalar], maxDigits: Int, _ bounds: inout [Int]) {
        let end = s.count
        var i = 0
        while i < end {
            let c = s[i]
            var j = i
            if c == "'", let n = contraction(s, i + 1, end, caseInsensitive: true) {
                j = i + 1 + n
            } else if isLetter(c) || (!isNewline(c) && !isLetter(c) && !isNumber(c) && i + 1 < end && isLetter(s[i + 1])) {
                // [^\r\n\p{L}\p{N}]?\p{L}+
                j = isLetter(c) ? i : i + 1
                while j < end, isLetter(s[j]) { j += 1 }
            } else if isNumber(c) {
                while j < end, j - i < maxDigits, isNumber(s[j]) { j += 1 }
            } else if !isSpace(c) || (c == " " && i + 1 < end && !isSpace(s[i + 1]) && !isLetter(s[i + 1]) && !isNumber(s[i + 1])) {
                //  ?[^\s\p{L}\p{N}]+[\r\n]*
                j = c == " " ? i + 1 : i
                while j < end, !isSpace(s[j]), !isLetter(s[j]), !isNumber(s[j]) { j += 1 }
                while j < end, isNewline(s[j]) { j += 1 }
            } else {
                // \s*[\r\n]+ : whitespace up to and including the last newline of the run.
                var k = i, lastNewline = -1
                while k < end, isSpace(s[k]) { if isNewline(s[k]) { lastNewline = k }; k += 1 }
                j = lastNewline >= 0 ? lastNewline + 1 : whitespace(s, i, end)
            }
            bounds.append(j)
            i = j
        }
    }
}
