// 001: the schema ledger. One (:SchemaMigration) node per applied file of
// schema/neo4j/, with the file's sha256; (:Meta)-less, so it exists before any
// dataset is loaded. GraphStore.apply_schema() writes the nodes; the highest
// `version` is the applied schema version.
CREATE CONSTRAINT schema_migration_version IF NOT EXISTS
FOR (m:SchemaMigration) REQUIRE m.version IS UNIQUE;
