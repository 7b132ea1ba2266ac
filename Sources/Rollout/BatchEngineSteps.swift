import Foundation
import Models
import Torch

// The engine's steps: admitting requests, one decode step, rows leaving, compaction.
extension BatchEngine {
    /// Prefills the prompts of `admit` into rows after the live ones (left-padded to the longest,
    /// at the next free columns); requests that do not fit even after a compaction wait.
    func prefill(_ admit: [(id: Int, request: Request, sink: Sink)]) throws {
        let width = admit.map(\.request.prompt.count).max()!
        guard makeRoom(width) else {
            lock.lock(); pending.insert(contentsOf: admit, at: 0); lock.unlock()
            return
        }
        let device = model.device, base = live.count, n = admit.count, past = cache.length
        var ids = [Int64](), keys = [Int64](), pos = [Int64]()
        for a in admit {
            let p = a.request.prompt, pad = width - p.count
            ids += Array(repeating: 0, count: pad) + p.map(Int64.init)
            keys += Array(repeating: 0, count: pad) + Array(repeating: 1, count: p.count)
            pos += Array(repeating: 0, count: pad) + (0..<p.count).map(Int64.init)
        }
        let rows = mask.narrowed(dim: 0, start: base, length: n)
        rows.narrowed(dim: 1, start: 0, length: past).zero_()
        rows.narrowed(dim: 1, start: past, length: width).copy(from: Tensor(keys, shape: [n, width]).to(device))
        if base > 0 { mask.narrowed(dim: 0, start: 0, length: base).narrowed(dim: 1, start: past, length: width).zero_() }
        let view = KVCache(rowsOf: cache, base..<(base + n))
        let h = try model.hidden(Tensor(ids, shape: [n, width]).to(device), attentionMask: rows.narrowed(dim: 1, start: 0, length: past + width),
                                 positions: Tensor(pos, shape: [n, width]).to(device), cache: view)
        cache.setLength(past + width)
        sampler.forwardTokens += admit.reduce(0) { $0 + $1.request.prompt.count }
        let fresh = model.logits(hidden: h.select(dim: 1, index: width - 1))
        logits = base == 0 ? fresh : Tensor.cat([logits!, fresh], dim: 0)
        for a in admit {
            let r = a.request, c = r.config
            let key = Sampler.contentKey(r.prompt) &+ UInt64(r.repeatIndex) &* 0x2545_F491_4F6C_DD1D
            let row = Sampler.Row(0, r.sampleIndex, try Generator(seed: Sampler.seed(c.seed ^ key, 0, r.sampleIndex), device: device))
            live.append(Live(id: a.id, request: r, row: row, sink: a.sink))
        }
    }

    /// One token for every live row (rows with the same sampling settings together), the events,
    /// the finished rows out, and the forward pass that gives the others' next logits.
    func decode() throws {
        guard let logits else { return }
        try recordTop(logits)
        var finished = Set<Int>()
        let groups = Dictionary(grouping: live.indices) { i -> GroupKey in GroupKey(live[i]) }
        for (key, members) in groups.sorted(by: { $0.value[0] < $1.value[0] }) {
            let pick = Tensor(members.map(Int64.init)).to(model.device)
            let (_, done) = try sampler.decodeStep(logits: logits.indexSelect(dim: 0, index: pick), rows: members.map { live[$0].row }, seen: nil,
                                                   config: key.config, schedule: ConstantTemperature(), stopIds: sampler.stopIds(key.config), last: key.last)
            for d in done { finished.insert(members[d]) }
        }
        for (i, l) in live.enumerated() { emit(l, finished: finished.contains(i)) }
        lock.lock()
        rowHistory.append(live.count)
        if rowHistory.count > 4096 { rowHistory.removeFirst(rowHistory.count - 4096) }
        lock.unlock()
        leave(finished)
        guard !live.isEmpty else { self.logits = nil; return }
        guard makeRoom(1) else { throw RolloutError("engine: the cache has no column left for the live rows") }
        let n = live.count, past = cache.length, device = model.device
        mask.narrowed(dim: 0, start: 0, length: n).narrowed(dim: 1, start: past, length: 1).fill_(1)
        let ids = Tensor(live.map { Int64($0.row.tokens.last!) }, shape: [n, 1]).to(device)
        let pos = Tensor(live.map { Int64($0.position) }, shape: [n, 1]).to(device)
        let out = try model(ids, attentionMask: mask.narrowed(dim: 0, start: 0, length: n).narrowed(dim: 1, start: 0, length: past + 1),
                            positions: pos, cache: KVCache(rowsOf: cache, 0..<n))
        cache.setLength(past + 1)
        sampler.forwardTokens += n
        for l in live { l.position += 1 }
        self.logits = out.squeezed(dim: 1)
    }

    /// The most likely tokens of the rows that ask for them, under the policy (temperature 1).
    func recordTop(_ logits: Tensor) throws {
        let k = live.map(\.request.topLogprobs).max() ?? 0
        guard k > 0 else { return }
        let (values, indices) = logits.to(dtype: .float32).logSoftmax(dim: -1).topk(k, dim: -1)
        let v = try values.doubles(), ids = try indices.int64s()
        for (i, l) in live.enumerated() where l.request.topLogprobs > 0 {
            l.top = (0..<l.request.topLogprobs).map { (Int(ids[i * k + $0]), v[i * k + $0]) }
        }
    }

    /// Rows sample together when their settings agree (the seed aside) and all are, or none is, at its last token.
    struct GroupKey: Hashable {
        let config: SamplingConfig, last: Bool
        init(_ l: Live) {
            var c = l.request.config
            last = l.row.tokens.count + 1 >= c.maxNewTokens
            c.seed = 0
            c.maxNewTokens = 1
            config = c
        }
    }

    /// Sends row `l`'s new text and, when it finished, its completion. Text is compared by Unicode
    /// scalars (a later token may join the last character sent), an incomplete byte sequence waits,
    /// and a tail that may begin a stop string is held back until it does not.
    func emit(_ l: Live, finished: Bool) {
        let r = l.row
        var text = finished ? r.text : sampler.tokenizer.decode(r.tokens)
        if !finished { text = Self.holdingBack(text, stops: l.request.config.stop) }
        var delta = ""
        let sent = Array(l.emitted.unicodeScalars), now = Array(text.unicodeScalars)
        if now.starts(with: sent), finished || now.last != "\u{FFFD}" {
            var d = String.UnicodeScalarView()
            d.append(contentsOf: now[sent.count...])
            delta = String(d)
            l.emitted = text
        }
        l.sink(.token(id: r.tokens.last!, logprob: r.logprobs.last!, text: delta, top: l.top))
        guard finished else { return }
        l.sink(.finished(Completion(promptIndex: 0, sampleIndex: l.request.sampleIndex, tokens: r.tokens, samplingLogprobs: r.samplingLogprobs,
                                    logprobs: r.logprobs, entropies: r.entropies, temperatures: r.temperatures,
                                    finishReason: r.finish ?? .length, text: r.text)))
    }

    /// `text` without its longest tail that is the start of a stop string (that tail may become one).
    static func holdingBack(_ text: String, stops: [String]) -> String {
        guard !stops.isEmpty else { return text }
        let scalars = Array(text.unicodeScalars)
        var keep = scalars.count
        for stop in stops {
            let s = Array(stop.unicodeScalars)
            for n in stride(from: Swift.min(s.count - 1, scalars.count), to: 0, by: -1) where Array(scalars.suffix(n)) == Array(s.prefix(n)) {
                keep = Swift.min(keep, scalars.count - n)
                break
            }
        }
        var v = String.UnicodeScalarView()
        v.append(contentsOf: scalars[..<keep])
        return String(v)
    }

    /// Takes the rows at positions `gone` out of the batch: the last live rows move into their slots.
    func leave(_ gone: Set<Int>) {
        guard !gone.isEmpty else { return }
        let count = live.count - gone.count, order = Sampler.fillOrder(live.count, removing: gone)
        for (dst, src) in order.enumerated() where dst != src {
            cache.copyRow(src, to: dst)
            mask.select(dim: 0, index: dst).copy(from: mask.select(dim: 0, index: src))
        }
        if let l = logits, count > 0 { logits = l.indexSelect(dim: 0, index: Tensor(order.map(Int64.init)).to(model.device)) }
        live = order.map { live[$0] }
        if live.isEmpty { logits = nil; cache.setLength(0) }
    }

    /// Whether `columns` more fit in the cache, compacting the live rows first when they do not.
    func makeRoom(_ columns: Int) -> Bool {
        if cache.length + columns <= cache.capacity { return true }
        guard !live.isEmpty else { cache.setLength(0); return columns <= cache.capacity }
        compact()
        return cache.length + columns <= cache.capacity
    }

    /// Moves each live row's own positions to the front of the cache (left-padded to the longest).
    func compact() {
        let n = live.count, length = cache.length, device = model.device
        compactions += 1
        guard let flags = try? mask.narrowed(dim: 0, start: 0, length: n).narrowed(dim: 1, start: 0, length: length).contiguous().int64s() else { return }
        let own = (0..<n).map { r in (0..<length).filter { flags[r * length + $0] == 1 } }
        let width = own.map(\.count).max() ?? 0
        let index = own.map { Array(repeating: 0, count: width - $0.count) + $0 }
        cache.gather(rows: index)
        let keys = own.flatMap { Array(repeating: Int64(0), count: width - $0.count) + Array(repeating: Int64(1), count: $0.count) }
        let rows = mask.narrowed(dim: 0, start: 0, length: n)
        rows.zero_()
        if width > 0 { rows.narrowed(dim: 1, start: 0, length: width).copy(from: Tensor(keys, shape: [n, width]).to(device)) }
    }
}
