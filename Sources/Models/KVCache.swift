import Torch

/// Keys and values of past positions, preallocated for `capacity` positions so decoding never
/// reallocates: each layer's `[B, KV heads, capacity, head dim]` buffer is written in place.
public final class KVCache {
    public let capacity: Int
    public private(set) var length = 0
    var keys: [Tensor]
    var values: [Tensor]

    public init(config: ModelConfig, batch: Int, capacity: Int, dtype: DType = .float32, device: Device = .cpu) {
        self.capacity = capacity
        let shape = [batch, config.numKeyValueHeads, capacity, config.headDim]
        keys = (0..<config.numHiddenLayers).map { _ in Tensor.zeros(shape, dtype: dtype, device: device) }
        values = (0..<config.numHiddenLayers).map { _ in Tensor.zeros(shape, dtype: dtype, device: device) }
    }

    /// Writes `k`, `v` ([B, KV, T, D]) of `layer` after the cached positions; returns all keys and
    /// values so far. `advance(by:)` moves past them once every layer has written.
    func write(layer: Int, k: Tensor, v: Tensor) throws -> (Tensor, Tensor) {
        let t = k.size(2)
        guard length + t <= capacity else {
            throw ModelError("KV cache holds \(capacity) positions; \(length) used and \(t) more requested")
        }
        keys[layer].narrowed(dim: 2, start: length, length: t).copy(from: k)
        values[layer].narrowed(dim: 2, start: length, length: t).copy(from: v)
        return (keys[layer].narrowed(dim: 2, start: 0, length: length + t),
                values[layer].narrowed(dim: 2, start: 0, length: length + t))
    }

    func advance(by t: Int) { length += t }

    /// A cache over batch rows `rows` of `parent` that shares its buffers (writes land in the
    /// parent) and starts at the parent's length: a continuous batch runs its live rows, or its
    /// newly admitted ones, through views of one preallocated cache.
    public init(rowsOf parent: KVCache, _ rows: Range<Int>) {
        capacity = parent.capacity
        length = parent.length
        keys = parent.keys.map { $0.narrowed(dim: 0, start: rows.lowerBound, length: rows.count) }
        values = parent.values.map { $0.narrowed(dim: 0, start: rows.lowerBound, length: rows.count) }
    }

    /// Sets the number of positions in use (after views wrote past it, or a compaction).
    public func setLength(_ n: Int) { length = n }

    /// Copies batch row `src` into row `dst` (the positions in use), in place.
    public func copyRow(_ src: Int, to dst: Int) {
        for l in keys.indices {
            keys[l].select(dim: 0, index: dst).narrowed(dim: 1, start: 0, length: length)
                .copy(from: keys[l].select(dim: 0, index: src).narrowed(dim: 1, start: 0, length: length))
            values[l].select(dim: 0, index: dst).narrowed(dim: 1, start: 0, length: length)
                .copy(from: values[l].select(dim: 0, index: src).narrowed(dim: 1, start: 0, length: length))
        }
    }

    /// Rewrites rows 0..<index.count so that row r's position p holds what position `index[r][p]`
    /// held (a compaction that drops padding); the length becomes the rows' common width.
    public func gather(rows index: [[Int]]) {
        guard let width = index.first?.count, width <= length, index.allSatisfy({ $0.count == width }) else { return }
        let n = index.count, device = keys.first?.device ?? .cpu
        for l in keys.indices {
            for buffers in [keys, values] {
                let b = buffers[l], shape = b.shape   // [B, KV, capacity, D]
                let idx = Tensor(index.flatMap { $0.map(Int64.init) }, shape: [n, 1, width, 1]).to(device)
                    .expanded(to: [n, shape[1], width, shape[3]])
                let rows = b.narrowed(dim: 0, start: 0, length: n)
                let moved = rows.narrowed(dim: 2, start: 0, length: length).gather(dim: 2, index: idx)
                rows.narrowed(dim: 2, start: 0, length: width).copy(from: moved)
            }
        }
        length = width
    }

    /// Forgets every position (the buffers are reused).
    public func reset() { length = 0 }

    /// Keeps the batch rows `order` (old row numbers, in their new order). When every row that
    /// moves comes from beyond the new batch size — as when finished rows' slots are filled with
    /// the last live rows — only those rows are copied, in place, and the buffers shrink to a view;
    /// otherwise all kept rows are gathered into new buffers.
    public func keep(rows order: [Int]) {
        let moves = order.enumerated().filter { $0.offset != $0.element }
        guard moves.allSatisfy({ $0.element >= order.count }) else {
            return select(rows: Tensor(order.map(Int64.init)).to(keys.first?.device ?? .cpu))
        }
        for (dst, src) in moves {
            for l in keys.indices {
                keys[l].select(dim: 0, index: dst).copy(from: keys[l].select(dim: 0, index: src))
                values[l].select(dim: 0, index: dst).copy(from: values[l].select(dim: 0, index: src))
            }
        }
        keys = keys.map { $0.narrowed(dim: 0, start: 0, length: order.count) }
        values = values.map { $0.narrowed(dim: 0, start: 0, length: order.count) }
    }

    /// Keeps only the batch rows in `rows` (e.g. to drop finished sequences).
    public func select(rows: Tensor) {
        keys = keys.map { $0.indexSelect(dim: 0, index: rows) }
        values = values.map { $0.indexSelect(dim: 0, index: rows) }
    }
}
