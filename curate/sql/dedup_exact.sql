-- Exact-duplicate removal by text hash: keep one document (the smallest doc_id) per identical text.
-- doc_id already dedups re-ingested records; this catches the same text under different ids or corpora.
-- Run: curate sql --store demo-store sql/dedup_exact.sql
SELECT doc_id, corpus, domain, n_bytes
FROM (
    SELECT doc_id, corpus, domain, n_bytes,
           row_number() OVER (PARTITION BY md5(text) ORDER BY doc_id) AS copy
    FROM docs
)
WHERE copy = 1
