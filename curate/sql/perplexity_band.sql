-- Perplexity band per domain (CCNet-style head / middle / tail): keep the middle 50% of each
-- domain by reference-LM perplexity. Cuts are percentiles of the whole scored pool, per domain.
-- Needs the `perplexity` feature table: curate score --scorers perplexity --set perplexity.model=tiny-lm
-- Run: curate sql --store demo-store sql/perplexity_band.sql
-- Used as a mixture selection (`select: sql/perplexity_band.sql`): it returns doc_id.
--
-- To change the band, edit `params` (lo, hi are fractions of each domain, lowest perplexity first):
--   keep the low 30% (CCNet "head", most like the reference text):  0.0 AS lo, 0.3 AS hi
--   keep the high half (helped on the Pile in "Perplexed by Perplexity"): 0.5 AS lo, 1.0 AS hi
-- To rank by another score, change `ppl` in `pool` (e.g. bits_per_byte); for one band over
-- all domains, use `'all' AS grp`. curate.selection.percentile_band() writes these two
-- CTEs itself and reuses everything from `ranked` on.
WITH params AS (SELECT 0.25 AS lo, 0.75 AS hi),
pool AS (
    SELECT doc_id, domain AS grp, n_bytes, ppl AS score
    FROM doc_features
    WHERE ppl IS NOT NULL
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
