/// The prefix tree (trie) of a group's token sequences, as TEMPO's Prefix-to-Tree uses it, without
/// materialising a node per token. Sorting the sequences and taking the longest common prefix (LCP)
/// of neighbours makes every prefix's descendant set D(s) a contiguous range of the sorted order;
/// as the prefix of one sequence grows, that range only shrinks at its ≤ G − 1 LCP thresholds.
/// So all node statistics along every sequence cost O(G² + Σ L) after an O(G log G · L) sort.
public struct PrefixTree {
    public let sequences: [[Int]]
    let order: [Int]          // sequence indices in lexicographic order
    let position: [Int]       // position[i] = where sequence i sits in `order`
    let lcp: [Int]            // lcp[k] = LCP(order[k-1], order[k]); lcp[0] unused

    public init(_ sequences: [[Int]]) {
        self.sequences = sequences
        let order = sequences.indices.sorted { a, b in
            let x = sequences[a], y = sequences[b]
            for k in 0..<Swift.min(x.count, y.count) where x[k] != y[k] { return x[k] < y[k] }
            return x.count != y.count ? x.count < y.count : a < b
        }
        var position = [Int](repeating: 0, count: sequences.count)
        for (k, i) in order.enumerated() { position[i] = k }
        var lcp = [Int](repeating: 0, count: sequences.count)
        for k in order.indices.dropFirst() {
            let x = sequences[order[k - 1]], y = sequences[order[k]]
            var n = 0
            while n < x.count, n < y.count, x[n] == y[n] { n += 1 }
            lcp[k] = n
        }
        self.order = order
        self.position = position
        self.lcp = lcp
    }

    /// For every prefix length t = 0…L of sequence i: the number of sequences through that node
    /// and the mean of `values` over them (the node's nonparametric value V(s)).
    public func nodeStatistics(of i: Int, values: [Double]) -> (sizes: [Int], means: [Double]) {
        let n = sequences.count, p = position[i], length = sequences[i].count
        // Prefix sums of values in sorted order, shifted by one value so that equal values give
        // exactly equal means (and so δ = 0 exactly when every outcome is the same).
        let shift = values.first ?? 0
        var prefix = [Double](repeating: 0, count: n + 1)
        for k in 0..<n { prefix[k + 1] = prefix[k] + (values[order[k]] - shift) }
        // left[j] = min LCP over (j, p] (non-decreasing in j); right[j] = min LCP over (p, j].
        var left = [Int](repeating: Int.max, count: n), right = [Int](repeating: Int.max, count: n)
        var m = Int.max
        for j in stride(from: p - 1, through: 0, by: -1) { m = Swift.min(m, lcp[j + 1]); left[j] = m }
        m = Int.max
        for j in (p + 1)..<Swift.max(n, p + 1) { m = Swift.min(m, lcp[j]); right[j] = m }
        var lo = 0, hi = n - 1
        var sizes = [Int](repeating: 0, count: length + 1), means = [Double](repeating: 0, count: length + 1)
        for t in 0...length {
            while lo < p && left[lo] < t { lo += 1 }
            while hi > p && right[hi] < t { hi -= 1 }
            sizes[t] = hi - lo + 1
            means[t] = shift + (prefix[hi + 1] - prefix[lo]) / Double(hi - lo + 1)
        }
        return (sizes, means)
    }
}
