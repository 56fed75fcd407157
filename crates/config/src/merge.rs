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
