//! Key-by-key merge of an override TOML table onto a base table.

/// Overlays `overlay` onto `base`: nested tables merge recursively, any other value
/// (including arrays) replaces the base value.
pub(crate) fn merge_tables(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table)) => {
                merge_tables(base_table, overlay_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The dotted paths of every value of `table` that is not itself a table (`runtime.runc_path`,
/// `cni.bin_dirs`), as `merge_tables` would set them; an empty table counts as a value.
pub(crate) fn leaf_keys(table: &toml::Table) -> Vec<String> {
    fn walk(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) if !inner.is_empty() => walk(inner, &path, out),
                _ => out.push(path),
            }
        }
    }
    let mut out = Vec::new();
    walk(table, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_merge_key_by_key_and_leaves_are_listed() {
        let mut base: toml::Table = toml::from_str("a = 1\n[t]\nx = 1\ny = [1]\n").unwrap();
        let overlay: toml::Table =
            toml::from_str("[t]\ny = [2, 3]\n[t.u]\nz = \"s\"\n[e]\n").unwrap();
        assert_eq!(leaf_keys(&overlay), ["e", "t.u.z", "t.y"]);
        merge_tables(&mut base, overlay);
        let want: toml::Table =
            toml::from_str("a = 1\n[t]\nx = 1\ny = [2, 3]\n[t.u]\nz = \"s\"\n[e]\n").unwrap();
        assert_eq!(base, want);
    }
}
