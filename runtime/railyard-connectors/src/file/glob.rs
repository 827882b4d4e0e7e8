//! File-name globs: `*` (any run), `?` (one character), `[abc]` / `[a-z]` / `[!0-9]` (one of
//! a set), `{csv,txt}` (alternatives, not nested). Case-sensitive; an unclosed `[` or `{` is
//! literal.

/// Whether `name` matches `pattern`.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    expand_braces(pattern).iter().any(|p| {
        let p: Vec<char> = p.chars().collect();
        let n: Vec<char> = name.chars().collect();
        match_chars(&p, &n)
    })
}

fn expand_braces(pattern: &str) -> Vec<String> {
    let Some(open) = pattern.find('{') else {
        return vec![pattern.to_string()];
    };
    let Some(len) = pattern[open..].find('}') else {
        return vec![pattern.to_string()];
    };
    let close = open + len;
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    pattern[open + 1..close]
        .split(',')
        .flat_map(|alt| expand_braces(&format!("{head}{alt}{tail}")))
        .collect()
}

/// Iterative wildcard matching with one backtrack point for the last `*`.
fn match_chars(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class(&p[pi..], n[ni]),
            Some(c) if *c == n[ni] => Some(1),
            _ => None,
        };
        match step {
            Some(width) if width > 0 => {
                pi += width;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// For a pattern starting with `[`: `Some(width of the class)` when `c` is in it, `None`
/// when not. An unclosed class matches a literal `[`.
fn class(p: &[char], c: char) -> Option<usize> {
    let mut i = 1;
    let negate = matches!(p.get(1), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut hit = false;
    loop {
        match p.get(i) {
            None => return (c == '[').then_some(1),
            Some(']') if i > start => break,
            Some(&lo) => {
                if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|x| *x != ']') {
                    let hi = p.get(i + 2).copied().unwrap_or(lo);
                    hit |= lo <= c && c <= hi;
                    i += 3;
                } else {
                    hit |= lo == c;
                    i += 1;
                }
            }
        }
    }
    (hit != negate).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("*", "sales.csv"));
        assert!(matches(
            "store_sales_lines*.csv",
            "store_sales_lines_20250315.csv"
        ));
        assert!(matches("store_sales_lines*.csv", "store_sales_lines.csv"));
        assert!(!matches(
            "store_sales_lines*.csv",
            "store_sales_tenders.csv"
        ));
        assert!(!matches("*.csv", "sales.csv.bak"));
        assert!(matches("s?les.csv", "sales.csv"));
        assert!(matches("*_[0-9][0-9].csv", "sales_07.csv"));
        assert!(!matches("*_[!0-9]*.csv", "sales_07.csv"));
        assert!(matches("*.{csv,txt}", "a.txt"));
        assert!(!matches("*.{csv,txt}", "a.json"));
        assert!(matches("a[b", "a[b"));
        assert!(matches("*a*b*c", "xxaxxbxxbxc"));
        assert!(!matches("*a*b*c", "xxaxxbxxbx"));
        assert!(!matches("*.CSV", "sales.csv"));
    }
}
