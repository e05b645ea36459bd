-- Quality selection from the two model-based scores, per domain: PreSelect (how well a document
-- predicts downstream ability) and a reference LM's perplexity. A document is kept when it is in
-- its domain's top 70% by PreSelect score and outside the 5% tails of bits per byte (the lowest
-- tail is repeated boilerplate, the highest is text the reference LM cannot read: encoded
-- attachments, symbol rules). Ranks are per domain, so every domain keeps the same share.
-- Needs the `preselect` and `perplexity` feature tables (`curate demo` builds both).
-- Run: curate sql --store demo-store sql/select_preselect_ppl.sql
-- Used as a mixture selection (`select: sql/select_preselect_ppl.sql`, examples/mixtures/demo.yaml).
--
-- To change the cuts, edit `params`; to select from another corpus, change `corpus = 'demo'`.
WITH params AS (SELECT 0.7 AS preselect_keep, 0.05 AS ppl_tail),
ranked AS (
    SELECT doc_id, domain, n_bytes, preselect_score, bits_per_byte,
           -- ties broken by doc_id so the selection is reproducible
           percent_rank() OVER (PARTITION BY domain ORDER BY preselect_score DESC, doc_id) AS preselect_rank,
           percent_rank() OVER (PARTITION BY domain ORDER BY bits_per_byte, doc_id) AS ppl_rank
    FROM doc_features
    WHERE corpus = 'demo' AND preselect_score IS NOT NULL AND bits_per_byte IS NOT NULL
)
SELECT doc_id, domain, n_bytes, preselect_score, bits_per_byte
FROM ranked, params
WHERE preselect_rank < preselect_keep AND ppl_rank >= ppl_tail AND ppl_rank <= 1 - ppl_tail
ORDER BY domain, preselect_score DESC, doc_id
