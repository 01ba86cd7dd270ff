// Number formatting for the progress lines (the tool does not link Foundation).

/// `value` with `digits` digits after the point.
func fixed(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = UInt64(scaled / scale)
    let fraction = UInt64(scaled - Double(whole) * scale)
    var text = (value < 0 && scaled != 0 ? "-" : "") + String(whole)
    if digits > 0 {
        let digitsText = String(fraction)
        text += "." + String(repeating: "0", count: max(0, digits - digitsText.count)) + digitsText
    }
    return text
}

/// A count with a k, M or G suffix: 1234567 -> "1.23M".
func human(_ value: Double) -> String {
    switch abs(value) {
    case 1e9...: fixed(value / 1e9, 2) + "G"
    case 1e6...: fixed(value / 1e6, 2) + "M"
    case 1e4...: fixed(value / 1e3, 1) + "k"
    default: String(Int(value))
    }
}

/// A count with thousands separators: 1234567 -> "1,234,567".
func grouped(_ value: UInt64) -> String {
    let digits = Array(String(value))
    var text = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { text.append(",") }
        text.append(digit)
    }
    return text
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
