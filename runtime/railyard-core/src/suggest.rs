//! "Did you mean" suggestions.

/// The candidate closest to `got`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    got: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let got_lower = got.to_ascii_lowercase();
    let mut best: Option<(&str, f64)> = None;
    for cand in candidates {
        let score = strsim::jaro_winkler(&got_lower, &cand.to_ascii_lowercase());
        let close_edit = strsim::damerau_levenshtein(&got_lower, &cand.to_ascii_lowercase())
            <= (cand.len() / 3).max(1);
        if (score >= 0.8 || close_edit) && best.is_none_or(|(_, s)| score > s) {
            best = Some((cand, score));
        }
    }
    best.map(|(c, _)| c)
}

/// Up to `n` candidates ordered by similarity to `got`, for "known ids nearest to ..." help.
pub fn nearest<'a>(
    got: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    n: usize,
) -> Vec<&'a str> {
    let mut scored: Vec<(&str, f64)> = candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(got, c)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    scored.into_iter().take(n).map(|(c, _)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_typos_only() {
        let keys = ["input", "steps", "output", "on_error", "tests"];
        assert_eq!(did_you_mean("inptu", keys), Some("input"));
        assert_eq!(did_you_mean("step", keys), Some("steps"));
        assert_eq!(did_you_mean("outptu", keys), Some("output"));
        assert_eq!(did_you_mean("zzzzzz", keys), None);
    }

    #[test]
    fn nearest_orders_by_similarity() {
        let ids = ["canonical.order@1", "canonical.return@1", "shopify.order@1"];
        assert_eq!(nearest("canonical.order@2", ids, 2)[0], "canonical.order@1");
    }
}
