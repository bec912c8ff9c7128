//! Backend capability records (API.md §8).

/// What a backend can do; flags in `FLAGS` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub name: String,
    pub transactions: bool,
    pub schema_create: bool,
    pub schema_migrations: bool,
    pub json_fields: bool,
    pub relationships: bool,
    pub graph_traversal: bool,
    pub vector_search: bool,
    pub hybrid_search: bool,
    pub full_text_search: bool,
    pub raw_queries: bool,
    pub explain: bool,
    pub server_side_cursors: bool,
    pub native_protocol: bool,
    pub document_queries: bool,
    pub key_value: bool,
    pub aggregations_and_facets: bool,
    pub ranked_pagination: bool,
    pub query_timeouts: bool,
    pub approximate_vector_search: bool,
}

impl Capabilities {
    /// Flag names in the order of the §8 table, additive flags last.
    pub const FLAGS: [&'static str; 19] = [
        "transactions",
        "schema_create",
        "schema_migrations",
        "json_fields",
        "relationships",
        "graph_traversal",
        "vector_search",
        "hybrid_search",
        "full_text_search",
        "raw_queries",
        "explain",
        "server_side_cursors",
        "native_protocol",
        "document_queries",
        "key_value",
        "aggregations_and_facets",
        "ranked_pagination",
        "query_timeouts",
        "approximate_vector_search",
    ];

    /// Every flag false.
    pub fn none(name: &str) -> Self {
        Capabilities {
            name: name.to_owned(),
            transactions: false,
            schema_create: false,
            schema_migrations: false,
            json_fields: false,
            relationships: false,
            graph_traversal: false,
            vector_search: false,
            hybrid_search: false,
            full_text_search: false,
            raw_queries: false,
            explain: false,
            server_side_cursors: false,
            native_protocol: false,
            document_queries: false,
            key_value: false,
            aggregations_and_facets: false,
            ranked_pagination: false,
            query_timeouts: false,
            approximate_vector_search: false,
        }
    }

    /// The in-memory engine: the §8 memory column, plus the additive flags
    /// it really implements (per-query deadlines).
    pub fn memory() -> Self {
        Capabilities {
            transactions: true,
            schema_create: true,
            schema_migrations: true,
            json_fields: true,
            relationships: true,
            graph_traversal: true,
            vector_search: true,
            hybrid_search: true,
            full_text_search: true,
            raw_queries: true,
            explain: true,
            server_side_cursors: true,
            native_protocol: true,
            document_queries: true,
            query_timeouts: true,
            ..Capabilities::none("memory")
        }
    }

    /// Flag values in `FLAGS` order.
    pub fn values(&self) -> [bool; 19] {
        [
            self.transactions,
            self.schema_create,
            self.schema_migrations,
            self.json_fields,
            self.relationships,
            self.graph_traversal,
            self.vector_search,
            self.hybrid_search,
            self.full_text_search,
            self.raw_queries,
            self.explain,
            self.server_side_cursors,
            self.native_protocol,
            self.document_queries,
            self.key_value,
            self.aggregations_and_facets,
            self.ranked_pagination,
            self.query_timeouts,
            self.approximate_vector_search,
        ]
    }

    /// `(flag, value)` pairs in `FLAGS` order.
    pub fn flags(&self) -> impl Iterator<Item = (&'static str, bool)> {
        Self::FLAGS.into_iter().zip(self.values())
    }

    /// A flag's value; `None` for an unknown flag name.
    pub fn get(&self, flag: &str) -> Option<bool> {
        self.flags().find(|(name, _)| *name == flag).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_column() {
        let caps = Capabilities::memory();
        assert_eq!(caps.name, "memory");
        for flag in &Capabilities::FLAGS[..14] {
            assert_eq!(caps.get(flag), Some(true), "{flag}");
        }
        assert_eq!(caps.get("key_value"), Some(false));
        assert_eq!(caps.get("query_timeouts"), Some(true));
        assert_eq!(caps.get("ranked_pagination"), Some(false));
        assert_eq!(caps.get("bogus"), None);
        assert_eq!(caps.flags().count(), 19);
    }
}
