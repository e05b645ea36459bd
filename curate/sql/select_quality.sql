-- A heuristics quality filter (Gopher-style thresholds) over the pool, English only.
-- Needs the `heuristics` and `langid` feature tables (curate score heuristics / langid).
-- Run: curate sql --store demo-store sql/select_quality.sql
-- Used as a mixture selection (`select: sql/select_quality.sql`): it must return doc_id.
SELECT doc_id, domain, n_bytes
FROM doc_features
WHERE corpus = 'demo'
  AND alpha_ratio >= 0.5          -- mostly letters, not markup or numbers
  AND dup_line_frac <= 0.3        -- Gopher: at most 30% duplicated lines
  AND top_2gram_frac <= 0.2       -- Gopher: the most frequent 2-gram covers at most 20% of characters
  AND (lang = 'en' OR domain = 'multilingual')   -- English, except the multilingual domain
