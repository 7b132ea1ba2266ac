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
