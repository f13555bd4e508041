import Foundation

/// The Jeffreys interval for a binomial proportion: the 2.5% and 97.5% quantiles of
/// Beta(k + ½, n − k + ½), with the lower end 0 when k = 0 and the upper end 1 when k = n.
public enum JeffreysInterval {
    public static func interval(successes k: Int, trials n: Int, level: Double = 0.95) -> (lower: Double, upper: Double)
    {
        guard n > 0 else { return (0, 1) }
        let a = Double(k) + 0.5
        let b = Double(n - k) + 0.5
        let tail = (1 - level) / 2
        let lower = k == 0 ? 0 : betaQuantile(tail, a, b)
        let upper = k == n ? 1 : betaQuantile(1 - tail, a, b)
        return (lower, upper)
    }

    /// The p-quantile of Beta(a, b), by bisection on the regularized incomplete beta function.
    public static func betaQuantile(_ p: Double, _ a: Double, _ b: Double) -> Double {
        var low = 0.0
        var high = 1.0
        for _ in 0..<100 {
            let middle = (low + high) / 2
            if regularizedIncompleteBeta(middle, a, b) < p { low = middle } else { high = middle }
        }
        return (low + high) / 2
    }

    /// I_x(a, b), by the continued fraction (Lentz's method) on whichever side converges.
    public static func regularizedIncompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logNormalizer: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * log(x) + b * log(1 - x)
        let logFront = logNormalizer + logPowers
        if x < (a + 1) / (a + b + 2) {
            return exp(logFront) * continuedFraction(x, a, b) / a
        }
        return 1 - exp(logFront) * continuedFraction(1 - x, b, a) / b
    }

    static func continuedFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var result = d
        for m in 1...500 {
            let m = Double(m)
            let evenNumerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + evenNumerator * d
            if abs(d) < tiny { d = tiny }
            c = 1 + evenNumerator / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            result *= d * c
            let oddNumerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + oddNumerator * d
            if abs(d) < tiny { d = tiny }
            c = 1 + oddNumerator / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            result *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return result
    }
}
