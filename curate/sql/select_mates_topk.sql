-- MATES selection over a stage's predictions: keep the share of the stage's pool with the lowest
-- mates_influence (predicted z-scored reference loss after one step on the document; lower = better).
-- Needs a MATES stage: curate mates stage --proxy <model> --stage 1 (feature table mates_main_s1).
-- Run: curate sql --store demo-store sql/select_mates_topk.sql
-- Used as a mixture selection (`select: sql/select_mates_topk.sql`): it returns doc_id.
--
-- This is the deterministic top-k (tau -> 0). The stage itself keeps an exact Gumbel-top-k sample
-- (tau 0.5, seeded): select those with
--   SELECT doc_id FROM read_parquet('mates/main/stage-1/selection.parquet')
-- (the stage writes that query to mates/<run>/stage-<k>/selection.sql).
-- Edit `params` for the share; another run or stage: change the table name mates_<run>_s<k>.
WITH params AS (SELECT 0.2 AS keep),
pool AS (
    -- rows outside the stage's candidate pool are null
    SELECT doc_id, mates_influence FROM mates_main_s1 WHERE mates_influence IS NOT NULL
),
ranked AS (
    -- best (lowest predicted loss) first; ties broken by doc_id so the cut is reproducible
    SELECT *, row_number() OVER (ORDER BY mates_influence, doc_id) AS rank, count(*) OVER () AS n
    FROM pool
)
SELECT doc_id, mates_influence, rank
FROM ranked, params
WHERE rank <= round(keep * n)
ORDER BY rank
