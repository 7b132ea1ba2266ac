import Foundation

/// Byte-level BPE (GPT-2, SmolLM2, Llama-3, Qwen2): added/special tokens are matched first; the
/// rest is pre-tokenised, each word's UTF-8 bytes are mapped to printable characters, and merges
/// are applied by rank. Decoding maps characters back to bytes, so any text round-trips.
public final class Tokenizer {
    public let pre: PreTokenizer
    /// Token strings in byte-level form, by id.
    public let tokens: [String]
    let vocab: [String: Int]
    /// (left id, right id) → (rank, merged id).
    let merges: [Pair: (rank: Int, id: Int)]
    /// Added tokens (special or user-defined), matched verbatim before BPE, longest first.
    public let addedTokens: [String: Int]
    let addedByLength: [String]
    public let specialIds: Set<Int>
    public var bosId: Int?
    public var eosIds: [Int]
    let ignoreMerges: Bool
    /// Merges in rank order (kept to write tokenizer.json back).
    public let mergeList: [(String, String)]
    /// byte → id of its single-character token; nil for a byte the vocabulary lacks (such bytes are
    /// dropped, as Hugging Face's BPE does without an unknown token).
    let byteId: [Int?]
    private var cache: [Substring: [Int]] = [:]
    private let lock = NSLock()

    struct Pair: Hashable { let a: Int32, b: Int32 }

    /// GPT-2's reversible byte → character map: printable bytes map to themselves, the rest to 256+.
    static let byteToChar: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var map = [Int](repeating: -1, count: 256)
        for b in printable { map[b] = b }
        var n = 0
        for b in 0..<256 where map[b] < 0 { map[b] = 256 + n; n += 1 }
        printable = []
        return map.map { Character(Unicode.Scalar(UInt32($0))!) }
    }()
    static let charToByte: [Character: UInt8] = {
        var d: [Character: UInt8] = [:]
        for (b, c) in byteToChar.enumerated() { d[c] = UInt8(b) }
        return d
    }()

    /// - merges: pairs of token strings in rank order.
    /// - added: added tokens (content → id); `special` marks those skipped by `decode(skipSpecial:)`.
    public init(tokens: [String], merges: [(String, String)], added: [String: Int], special: Set<Int>,
                pre: PreTokenizer, bosId: Int?, eosIds: [Int], ignoreMerges: Bool = false, source: String = "tokenizer") throws {
        for (name, id) in [("bos", bosId)] + eosIds.map({ ("eos", $0) }) + added.map({ ("added token '\($0.key)'", $0.value) }) {
            if let id, !(0..<tokens.count).contains(id) {
                throw ModelError("\(source): \(name) id \(id) is outside the vocabulary (\(tokens.count) tokens)")
            }
        }
        self.tokens = tokens
        self.pre = pre
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = i }
        self.vocab = vocab
        var m: [Pair: (Int, Int)] = [:]
        m.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = vocab[a], let ib = vocab[b], let merged = vocab[a + b] else {
                throw ModelError("\(source): merge \(rank) '\(a) \(b)' uses a token that is not in the vocabulary")
            }
            let key = Pair(a: Int32(ia), b: Int32(ib))
            if m[key] == nil { m[key] = (rank, merged) }
        }
        self.merges = m
        self.mergeList = merges
        self.addedTokens = added
        self.addedByLength = added.keys.sorted { $0.count != $1.count ? $0.count > $1.count : $0 < $1 }
        self.specialIds = special
        self.bosId = bosId
        self.eosIds = eosIds
        self.ignoreMerges = ignoreMerges
        let byteId = Tokenizer.byteToChar.map { vocab[String($0)] }
        guard byteId.filter({ $0 != nil }).count >= 128 else {
            throw ModelError("\(source): the vocabulary lacks most byte-level tokens (not a byte-level BPE?)")
        }
        self.byteId = byteId
        for (content, id) in added where !(0..<tokens.count).contains(id) {
            throw ModelError("\(source): added token '\(content)' has id \(id) outside the vocabulary (\(tokens.count))")
        }
    }

    public var vocabSize: Int { tokens.count }

    // MARK: encoding

    /// Token ids of `text`; added tokens in the text are recognised unless `allowSpecial` is false.
    public func encode(_ text: String, allowSpecial: Bool = true) -> [Int] {
        var out = [Int]()
        var rest = Substring(text)
        while !rest.isEmpty {
            guard allowSpecial, let (range, id) = firstAdded(in: rest) else {
                encodeOrdinary(rest, into: &out)
                break
            }
            encodeOrdinary(rest[rest.startIndex..<range.lowerBound], into: &out)
            out.append(id)
            rest = rest[range.upperBound...]
        }
        return out
    }

    /// The earliest added token in `s` (the longest at that position).
    func firstAdded(in s: Substring) -> (Range<Substring.Index>, Int)? {
        guard !addedByLength.isEmpty, s.contains("<") || addedByLength.contains(where: { !$0.hasPrefix("<") }) else { return nil }
        var best: (Range<Substring.Index>, Int)? = nil
        for token in addedByLength {
            guard let r = s.range(of: token) else { continue }
            if best == nil || r.lowerBound < best!.0.lowerBound { best = (r, addedTokens[token]!) }
        }
        return best
    }

    func encodeOrdinary(_ text: Substring, into out: inout [Int]) {
        guard !text.isEmpty else { return }
        for word in pre.split(String(text)) {
            lock.lock()
            let hit = cache[word]
            lock.unlock()
            if let hit { out.append(contentsOf: hit); continue }
            let ids = bpe(word)
            lock.lock()
            if cache.count > 100_000 { cache.removeAll(keepingCapacity: true) }
            cache[word] = ids
            lock.unlock()
            out.append(contentsOf: ids)
        }
    }

    /// Byte-level BPE of one pre-token: start from single bytes, merge the lowest-ranked adjacent
    /// pair until no pair has a merge.
    func bpe(_ word: Substring) -> [Int] {
        let bytes = Array(word.utf8)
        if ignoreMerges, let whole = vocab[String(bytes.map { Tokenizer.byteToChar[Int($0)] })] { return [whole] }
        var ids = bytes.compactMap { byteId[Int($0)] }
        while ids.count > 1 {
            var bestRank = Int.max, bestAt = -1, bestId = 0
            for k in 0..<(ids.count - 1) {
                if let m = merges[Pair(a: Int32(ids[k]), b: Int32(ids[k + 1]))], m.rank < bestRank {
                    bestRank = m.rank; bestAt = k; bestId = m.id
                }
            }
            guard bestAt >= 0 else { break }
            // Merge every occurrence of this pair, left to right.
            let (a, b) = (ids[bestAt], ids[bestAt + 1])
            var merged = [Int]()
            merged.reserveCapacity(ids.count)
            var k = 0
            while k < ids.count {
                if k + 1 < ids.count, ids[k] == a, ids[k + 1] == b { merged.append(bestId); k += 2 } else { merged.append(ids[k]); k += 1 }
            }
            ids = merged
        }
        return ids
    }

    // MARK: decoding

    /// The bytes a token stands for.
    public func bytes(of id: Int) -> [UInt8] {
        guard (0..<tokens.count).contains(id) else { return [] }
        let t = tokens[id]
        if addedTokens[t] == id { return Array(t.utf8) }
        var out = [UInt8]()
        for c in t {
            if let b = Tokenizer.charToByte[c] { out.append(b) } else { out.append(contentsOf: Array(String(c).utf8)) }
        }
        return out
    }

    /// Text of `ids`; invalid UTF-8 (a cut multi-byte character) becomes U+FFFD.
    public func decode(_ ids: [Int], skipSpecial: Bool = false) -> String {
        var bytes = [UInt8]()
        for id in ids where !(skipSpecial && specialIds.contains(id)) { bytes.append(contentsOf: self.bytes(of: id)) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The printable piece of each token (for display).
    public func piece(_ id: Int) -> String { String(decoding: bytes(of: id), as: UTF8.self) }

    public func id(of token: String) -> Int? { addedTokens[token] ?? vocab[token] }
}

/// Decodes token by token, emitting text only once its UTF-8 characters are complete, so a
/// character split across tokens (emoji, CJK) is never shown broken.
public struct StreamDecoder {
    let tokenizer: Tokenizer
    var pending: [UInt8] = []

    public init(_ tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    /// The text that became complete with `id`.
    public mutating func push(_ id: Int) -> String {
        pending.append(contentsOf: tokenizer.bytes(of: id))
        // Keep a trailing incomplete sequence (at most 3 bytes) for the next token.
        var cut = pending.count
        var k = pending.count - 1, back = 0
        while k >= 0, back < 4, pending[k] & 0xC0 == 0x80 { k -= 1; back += 1 }
        if k >= 0 {
            let lead = pending[k]
            let need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
            if pending.count - k < need { cut = k }
        }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Whatever is left (an incomplete character becomes U+FFFD).
    public mutating func finish() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }
}
