-- Base views over a curate store, for any DuckDB client.
-- Paths are relative to the store directory: run from it,
--   cd my-store && duckdb -c ".read ../sql/views.sql" -c "SELECT count(*) FROM docs"
-- or set `SET file_search_path = 'path/to/store';` first.
-- `curate sql --views` prints these plus one view per feature table and `doc_features`.

-- every document of every corpus (doc_id, corpus, orig_id, text, domain, source, url, n_bytes, meta)
CREATE OR REPLACE VIEW docs AS
SELECT * FROM read_parquet('shards/*/*.parquet', union_by_name = true);

-- every record refused at ingest, with where it was and why
CREATE OR REPLACE VIEW quarantine AS
SELECT * FROM read_parquet('quarantine/*/*.parquet', union_by_name = true);
