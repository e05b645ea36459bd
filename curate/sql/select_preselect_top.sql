-- PreSelect selection: keep the top 10% of the pool *by characters* ranked by preselect_score
-- (the paper's cut). The threshold is computed over the whole scored pool (the authors' script
-- estimates it from 3 shards): documents are taken best first until their characters reach
-- 10% of the pool's; the document that crosses the line is kept.
-- Needs the `preselect` feature table: curate preselect train && curate preselect score
-- Run: curate sql --store demo-store sql/select_preselect_top.sql
-- Used as a mixture selection (`select: sql/select_preselect_top.sql`): it returns doc_id.
--
-- To change the cut, edit `params` (share of the pool's characters, 0..1].
-- For the same share inside each domain, use `domain AS grp` in `pool`; to restrict the pool
-- (e.g. one corpus), add to its WHERE. curate.selection.top_share() writes these two CTEs
-- itself and reuses everything from `ranked` on.
WITH params AS (SELECT 0.1 AS share),
pool AS (
    SELECT doc_id, 'all' AS grp, length(text) AS n_chars, preselect_score AS score
    FROM doc_features
    WHERE preselect_score IS NOT NULL
),
ranked AS (
    -- best first inside each group; ties broken by doc_id so the cut is reproducible
    SELECT *, sum(n_chars) OVER (PARTITION BY grp ORDER BY score DESC, doc_id
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_chars,
           sum(n_chars) OVER (PARTITION BY grp) AS total_chars
    FROM pool
)
-- keep a document while the characters before it are under the share of its group's characters
SELECT doc_id, grp, n_chars, score, cum_chars / total_chars AS char_share
FROM ranked, params
WHERE cum_chars - n_chars < share * total_chars
ORDER BY grp, score DESC, doc_id
