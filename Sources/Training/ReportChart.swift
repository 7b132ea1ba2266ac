import Foundation

extension Report {
    /// Round tick values covering [lo, hi] in steps of 1, 2 or 5 × 10^k, about `target` of them.
    static func ticks(_ lo: Double, _ hi: Double, target: Int = 4) -> [Double] {
        let span = Swift.max(hi - lo, 1e-300), raw = span / Double(target)
        let magnitude = Foundation.pow(10, Foundation.floor(Foundation.log10(raw))), f = raw / magnitude
        let k: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10, step = k * magnitude
        let first = Foundation.floor(lo / step + 1e-9), last = Foundation.ceil(hi / step - 1e-9)
        // i·k is a whole number, so each tick is that times the power of ten, without drift.
        return stride(from: first, through: last, by: 1).map { ($0 * k) * magnitude }
    }

    /// One metric's panel: the curve over steps, y gridlines at round values with their labels,
    /// steps along x, and an optional band (step, low, high) behind the curve.
    static func chart(title: String, points: [(Double, Double)], band: [(Double, Double, Double)]? = nil) -> String {
        let w = 320.0, h = 170.0, left = 46.0, right = 10.0, top = 22.0, bottom = 28.0
        let xs = points.map(\.0), ys = points.map(\.1) + (band ?? []).flatMap { [$0.1, $0.2] }
        let x0 = xs.min()!, x1 = Swift.max(xs.max()!, x0 + 1)
        var lo = ys.min()!, hi = ys.max()!
        // A single value (or one step): a range around it; tiny but real ranges (a KL of 1e-13) keep their scale.
        if hi - lo <= 1e-12 * Swift.max(abs(lo), abs(hi)) { lo -= 0.5 * Swift.max(abs(lo), 1e-3); hi += 0.5 * Swift.max(abs(hi), 1e-3) }
        let yt = ticks(lo, hi), y0 = Swift.min(lo, yt.first!), y1 = Swift.max(hi, yt.last!)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (w - left - right) }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = "<figure><svg viewBox=\"0 0 \(Int(w)) \(Int(h))\" width=\"\(Int(w))\" height=\"\(Int(h))\" role=img aria-label=\"\(escape(title))\">"
        svg += "<text x=\"\(Int(left))\" y=\"14\" class=t>\(escape(title))</text>"
        svg += "<rect x=\"\(Int(left))\" y=\"\(Int(top))\" width=\"\(Int(w - left - right))\" height=\"\(Int(h - top - bottom))\" class=frame />"
        svg += "<g class=grid>"
        for v in yt {
            svg += "<line x1=\"\(Int(left))\" x2=\"\(Int(w - right))\" y1=\"\(f(py(v)))\" y2=\"\(f(py(v)))\" />"
            svg += "<text x=\"\(Int(left) - 4)\" y=\"\(f(py(v) + 3.5))\" class=ay>\(axis(v))</text>"
        }
        for s in ticks(x0, x1).filter({ $0 >= x0 && $0 <= x1 && $0 == $0.rounded() }) {
            svg += "<text x=\"\(f(px(s)))\" y=\"\(Int(h - bottom) + 12)\" class=axc>\(Int(s))</text>"
        }
        svg += "</g><text x=\"\(Int(w - right))\" y=\"\(Int(h) - 3)\" class=axr>step</text>"
        if let band, band.count > 1 {
            let outline = band.map { "\(f(px($0.0))),\(f(py($0.2)))" } + band.reversed().map { "\(f(px($0.0))),\(f(py($0.1)))" }
            svg += "<polygon points=\"\(outline.joined(separator: " "))\" class=band />"
        }
        let path = points.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
        svg += points.count == 1 ? "<circle cx=\"\(f(px(xs[0])))\" cy=\"\(f(py(points[0].1)))\" r=3 class=dot />" : "<polyline points=\"\(path)\" class=line />"
        return svg + "</svg></figure>\n"
    }
}
