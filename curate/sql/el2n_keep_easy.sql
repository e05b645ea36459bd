-- EL2N keep-easy per domain: keep the easiest 50% of each domain by EL2N
-- (mean ||softmax - one_hot|| over tokens, averaged over seeded proxy LMs);
-- easy examples (low EL2N) are what "Beyond neural scaling laws" keeps when data is scarce.
-- Needs the `el2n` feature table:
--   curate train-lm --name proxy --preset micro --seeds 2 --tokens 100000
--   curate score --scorers el2n --model proxy
-- Run: curate sql --store demo-store sql/el2n_keep_easy.sql
-- Used as a mixture selection (`select: sql/el2n_keep_easy.sql`): it returns doc_id.
-- Other bands: edit `params`, e.g. keep-hard: 0.5 AS lo, 1.0 AS hi (sql/el2n_keep_hard.sql).
-- For GraNd, change `el2n` to `grand` in `pool`. Everything from `ranked` on is the same as
-- sql/perplexity_band.sql (a test keeps them identical): curate.selection.percentile_band("el2n", ...)
-- builds the same query from Python.
WITH params AS (SELECT 0.0 AS lo, 0.5 AS hi),
pool AS (
    SELECT doc_id, domain AS grp, n_bytes, el2n AS score
    FROM doc_features
    WHERE el2n IS NOT NULL
),
ranked AS (
    -- rank inside each group; ties broken by doc_id so the band is reproducible
    SELECT *, row_number() OVER (PARTITION BY grp ORDER BY score, doc_id) AS rn,
           count(*) OVER (PARTITION BY grp) AS n
    FROM pool
)
-- a band [lo, hi) keeps floor(hi * n) - floor(lo * n) documents of a group of n
SELECT doc_id, grp AS domain, n_bytes, score, (rn - 0.5) / n AS percentile
FROM ranked, params
WHERE rn > floor(lo * n) AND rn <= floor(hi * n)
ORDER BY domain, score, doc_id
