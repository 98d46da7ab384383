//! Number formatting shared by the human formats (table, Markdown, SVG, the
//! recommendation's wording): thousands separators, milliseconds, percentages,
//! p-values, and word wrapping.

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Requests per second: whole numbers with separators from 100 up (`2,180`),
/// one decimal from 10 (`45.3`), two below (`3.14`).
pub fn rate(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    if x >= 99.5 {
        thousands(x.round() as u64)
    } else if x >= 9.995 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Milliseconds: `0.82 ms`, `45.9 ms`, `412 ms`, `1,234 ms`, then seconds from 10 s.
pub fn ms(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 9_999.5 {
        format!("{:.1} s", x / 1000.0)
    } else if x >= 99.95 {
        format!("{} ms", thousands(x.round() as u64))
    } else if x >= 0.995 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.2} ms")
    }
}

/// Milliseconds as seconds for times of seconds (a cold start): `0.84 s`,
/// `2.41 s`, then `12.4 s` from 10 s.
pub fn ms_as_seconds(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 9_995.0 {
        format!("{:.1} s", x / 1000.0)
    } else {
        format!("{:.2} s", x / 1000.0)
    }
}

/// A cold start with its interval: `2.41 s [2.39–2.47]`, the value alone
/// from a single run.
pub fn cold_start(c: &super::ColdStart) -> String {
    if c.runs_ms.len() < 2 {
        return ms_as_seconds(c.median_ms);
    }
    let bare = |x: f64| ms_as_seconds(x).trim_end_matches(" s").to_string();
    format!(
        "{} [{}–{}]",
        ms_as_seconds(c.median_ms),
        bare(c.low_ms),
        bare(c.high_ms)
    )
}

/// Seconds as ab prints them: `0.459 s`; `12.3 s` from 10 s.
pub fn seconds(x: f64) -> String {
    if x >= 9.9995 {
        format!("{x:.1} s")
    } else {
        format!("{x:.3} s")
    }
}

/// A ratio above 1 as the percentage it exceeds 1 by: 1.083 -> `8.3%`, 1.0046 -> `0.46%`.
pub fn pct_more(ratio: f64) -> String {
    percent(ratio - 1.0)
}

/// A fraction as a percentage: one decimal, two under 1%.
pub fn percent(f: f64) -> String {
    let p = f * 100.0;
    if !p.is_finite() {
        "–".into()
    } else if p.abs() < 0.995 {
        format!("{p:.2}%")
    } else {
        let s = format!("{p:.1}");
        format!("{}%", s.strip_suffix(".0").unwrap_or(&s))
    }
}

/// An interval for a ratio as percentages, one decimal: (1.011, 1.030) ->
/// `1.1–3.0%`; one spanning 1 gets signs: (0.992, 1.012) -> `−0.8% to +1.2%`.
pub fn ratio_interval(low: f64, high: f64) -> String {
    let (l, h) = ((low - 1.0) * 100.0, (high - 1.0) * 100.0);
    if !(l.is_finite() && h.is_finite()) {
        "–".into()
    } else if l >= 0.0 || h <= 0.0 {
        let (l, h) = if l >= 0.0 { (l, h) } else { (-h, -l) };
        format!("{l:.1}–{h:.1}%")
    } else {
        format!("−{:.1}% to +{h:.1}%", -l)
    }
}

/// A coverage: `96.9%`, `75%`.
pub fn coverage(c: f64) -> String {
    let p = c * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// `p = 0.008`, `p = 0.42`, `p < 0.001`.
pub fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else if p < 0.0995 {
        format!("p = {p:.3}")
    } else {
        format!("p = {p:.2}")
    }
}

/// `5 runs each`, `4–6 runs each`, `1 run each`.
pub fn runs_each(min: usize, max: usize) -> String {
    if min == max {
        format!("{min} run{} each", if min == 1 { "" } else { "s" })
    } else {
        format!("{min}–{max} runs each")
    }
}

/// Splits `text` into lines of at most `width` characters at spaces (a longer
/// word stands alone).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `12.3 MB` (decimal units, as registries and podman display sizes).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_intervals() {
        assert_eq!(ratio_interval(1.011, 1.030), "1.1–3.0%");
        assert_eq!(ratio_interval(0.992, 1.012), "−0.8% to +1.2%");
        assert_eq!(ratio_interval(1.0, 1.0), "0.0–0.0%");
        assert_eq!(ratio_interval(0.97, 0.99), "1.0–3.0%");
        assert_eq!(ratio_interval(f64::INFINITY, 2.0), "–");
    }

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rate(2177.12), "2,177");
        assert_eq!(rate(45.34), "45.3");
        assert_eq!(rate(4.256), "4.26");
        assert_eq!(ms(0.823), "0.82 ms");
        assert_eq!(ms(45.93), "45.9 ms");
        assert_eq!(ms(412.4), "412 ms");
        assert_eq!(ms(1234.0), "1,234 ms");
        assert_eq!(ms(12_345.0), "12.3 s");
        assert_eq!(seconds(0.4594), "0.459 s");
        assert_eq!(pct_more(1.083), "8.3%");
        assert_eq!(pct_more(1.0046), "0.46%");
        assert_eq!(percent(0.01), "1%");
        assert_eq!(percent(0.25), "25%");
        assert_eq!(coverage(0.75), "75%");
        assert_eq!(coverage(0.968_75), "96.9%");
        assert_eq!(p_value(0.0079), "p = 0.008");
        assert_eq!(p_value(0.4206), "p = 0.42");
        assert_eq!(p_value(0.0004), "p < 0.001");
        assert_eq!(runs_each(5, 5), "5 runs each");
        assert_eq!(runs_each(1, 1), "1 run each");
        assert_eq!(runs_each(4, 6), "4–6 runs each");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(123_456_789), "123.5 MB");
        assert_eq!(human_bytes(1_000), "1.0 kB");
    }

    #[test]
    fn wraps_at_spaces() {
        assert_eq!(
            wrap("aa bb cc dd", 5),
            vec!["aa bb".to_string(), "cc dd".to_string()]
        );
        assert_eq!(wrap("averylongword x", 4), vec!["averylongword", "x"]);
        assert!(wrap("", 10).is_empty());
    }
}
