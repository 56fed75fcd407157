//! The filter every CRI list RPC shares: an ID prefix and a label selector whose pairs must
//! all be among the object's labels.

use std::collections::{BTreeMap, HashMap};

/// Whether an object with `id` and `labels` passes `id_prefix` (empty: any) and `selector`.
pub fn id_and_labels_match(
    id: &str,
    labels: &BTreeMap<String, String>,
    id_prefix: &str,
    selector: &HashMap<String, String>,
) -> bool {
    id.starts_with(id_prefix)
        && selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_every_selector_pair() {
        let labels = BTreeMap::from([
            ("app".to_owned(), "web".to_owned()),
            ("tier".to_owned(), "1".to_owned()),
        ]);
        let selector = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(id_and_labels_match("abc", &labels, "", &selector(&[])));
        assert!(id_and_labels_match(
            "abc",
            &labels,
            "ab",
            &selector(&[("app", "web")])
        ));
        assert!(!id_and_labels_match("abc", &labels, "b", &selector(&[])));
        assert!(!id_and_labels_match(
            "abc",
            &labels,
            "",
            &selector(&[("app", "web"), ("tier", "2")])
        ));
        assert!(!id_and_labels_match(
            "abc",
            &labels,
            "",
            &selector(&[("missing", "x")])
        ));
    }
}
