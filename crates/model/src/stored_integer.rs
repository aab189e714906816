//! A `u64` (a scope mask or hash) as SQLite stores it: its bits as a signed 64-bit integer. JSON
//! outputs use this form so that they join with the exported tables and SQL queries.

/// Serialize `v` as the `i64` with the same bits.
pub fn serialize<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(*v as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hash_is_written_as_the_store_holds_it() {
        #[derive(serde::Serialize)]
        struct Row {
            #[serde(serialize_with = "super::serialize")]
            hash: u64,
        }
        let row = Row {
            hash: 15_196_116_115_377_527_738,
        };
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"hash":-3250627958332023878}"#
        );
    }
}
