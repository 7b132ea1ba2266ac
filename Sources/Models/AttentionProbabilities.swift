import Foundation
import Torch

extension CausalLM {
    /// softmax(q·kᵀ/√d) over the keys each query may attend to (`mask` [B, 1, T, K], true = attend;
    /// nil: causal), averaged over the query heads: [B, T, K]. Key heads are shared by their
    /// query-head group (grouped-query attention).
    func headMeanProbabilities(_ q: Tensor, _ k: Tensor, mask: Tensor?) throws -> Tensor {
        let (b, h, t, d) = (q.size(0), q.size(1), q.size(2), q.size(3))
        let kv = k.size(1), keys = k.size(2)
        let shared = kv == h ? k : k.unsqueezed(dim: 2).expanded(to: [b, kv, h / kv, keys, d]).reshaped([b, h, keys, d])
        let scores = q.to(dtype: .float32).matmul(shared.to(dtype: .float32).transposed(2, 3)) / Double(d).squareRoot()   // [B, H, T, K]
        let allowed = mask ?? Tensor.ones([t, keys], dtype: .bool, device: q.device).tril(diagonal: keys - t).unsqueezed(dim: 0).unsqueezed(dim: 0)
        return scores.maskedFill(allowed.logicalNot(), value: -Double.infinity).softmax(dim: -1).mean(dim: 1)
    }
}
